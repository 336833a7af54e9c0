"""The transformers backend's decoding loop: ``generate()``'s token ids
without its per-step overhead, for NLLB (M2M100) checkpoints on the CPU.

At the test model's size a decoding step's arithmetic is a small part of
its cost: ``generate()`` spends the rest building model outputs, masks and
cache bookkeeping, running its stopping checks, and calling a dozen
``nn.Module`` wrappers per layer (``benchmarks/hf_call.py``: 4.3 ms of CPU
per greedy step at batch 1, 2.5 ms of it inside the model's ``forward``).
A revision of a document makes many small calls, so that overhead, not the
model, set its cost. This loop's step at batch 1: 1.2-1.5 ms greedy and
2.7 ms at beams 4 (generate(): 3.4-5.3 ms and 4.7-5.0 ms); what is left is
torch's own cost per operation, about 50 of them per step.

This module runs the same computation with the model's own weights and
the same torch operations in the same order (the decoder layers of
``modeling_m2m_100``, its SDPA attention, ``DynamicCache``'s concatenation
and beam reordering), and mirrors ``generate()``'s greedy and beam search
(transformers 5's vectorised beam search: ``length_penalty`` 1,
``early_stopping`` False, one returned sequence) with the same logits
processors, built from their public classes in ``generate()``'s order. The
encoder runs as the model's own module, once per call.

Identity with ``generate()`` is a contract, not a hope: ``supports`` admits
only the configurations it was checked on (an M2M100 model with SDPA
attention on the CPU, a generation config with nothing but token ids set),
and ``tests/test_hf_search.py`` compares the token ids of both paths at
beams 1, 3 and 4, with and without the ladder's guards, in float32 and
bfloat16, on the trained and the random test model. Anything else goes
through ``generate()``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers.generation.logits_process import (
    ForcedBOSTokenLogitsProcessor,
    MinLengthLogitsProcessor,
    MinNewTokensLengthLogitsProcessor,
    NoRepeatNGramLogitsProcessor,
    RepetitionPenaltyLogitsProcessor,
)
from transformers.masking_utils import create_bidirectional_mask

# What a checkpoint's generation config may set for this loop to be
# generate()'s: token ids and switches that do not change the search.
_NEUTRAL_GENERATION_KEYS = {"bos_token_id", "eos_token_id", "pad_token_id",
                            "decoder_start_token_id", "max_length", "use_cache",
                            "output_attentions", "output_hidden_states", "_from_model_config",
                            "transformers_version"}


def supports(model) -> bool:
    """True where this loop gives ``generate()``'s ids (checked by tests)."""
    config = model.config
    diff = model.generation_config.to_diff_dict()
    return (config.model_type == "m2m_100" and config._attn_implementation == "sdpa"
            and model.device.type == "cpu" and not model.training
            and set(diff) <= _NEUTRAL_GENERATION_KEYS
            and all(isinstance(getattr(model.generation_config, name), int)
                    for name in ("eos_token_id", "pad_token_id", "decoder_start_token_id"))
            and model.generation_config.use_cache is not False)


def search(model, input_ids, attention_mask, *, forced_bos_token_id: int, max_new_tokens: int,
           min_new_tokens: int | None, num_beams: int, no_repeat_ngram_size: int | None,
           repetition_penalty: float | None) -> list[list[int]]:
    """``model.generate(...)``'s sequences as lists of ids, for the
    arguments ``HfTranslator.run_encoded`` passes (``do_sample=False``)."""
    gen = model.generation_config
    eos, pad, start = gen.eos_token_id, gen.pad_token_id, gen.decoder_start_token_id
    max_length = 1 + max_new_tokens  # the decoder's prompt is its start token
    beams = num_beams
    processors = _processors(eos, forced_bos_token_id, min_new_tokens,
                             no_repeat_ngram_size, repetition_penalty, input_ids.device)
    encoder = model.get_encoder()
    hidden = encoder(input_ids=input_ids, attention_mask=attention_mask,
                     return_dict=True).last_hidden_state
    if beams > 1:  # generate() encodes once and repeats the result per beam
        hidden = hidden.repeat_interleave(beams, dim=0)
        attention_mask = attention_mask.repeat_interleave(beams, dim=0)
    decoder = _Decoder(model, hidden, attention_mask)
    first = torch.full((hidden.shape[0], 1), start, dtype=torch.long, device=hidden.device)
    if beams == 1:
        return _greedy(decoder, first, processors, eos, pad, max_length).tolist()
    return _beam(decoder, first, processors, eos, pad, max_length, beams).tolist()


def _processors(eos, forced_bos, min_new_tokens, ngram, penalty, device):
    """generate()'s logits processors for these settings, in its order."""
    eos_tensor = torch.tensor([eos], device=device)
    out = []
    if penalty is not None and penalty != 1.0:
        out.append(RepetitionPenaltyLogitsProcessor(penalty, prompt_ignore_length=None))
    if ngram:
        out.append(NoRepeatNGramLogitsProcessor(ngram))
    if min_new_tokens:
        # generate() turns min_new_tokens into a min_length as well
        out.append(MinLengthLogitsProcessor(1 + min_new_tokens, eos_tensor, device=device))
        out.append(MinNewTokensLengthLogitsProcessor(1, min_new_tokens, eos_tensor, device=device))
    out.append(ForcedBOSTokenLogitsProcessor(forced_bos))
    return out


def _processed(processors, ids, scores):
    """``LogitsProcessorList.__call__`` without its per-step ``inspect.signature``
    of each processor: these take (ids, scores) only."""
    for processor in processors:
        scores = processor(ids, scores)
    return scores


class _Decoder:
    """The M2M100 decoder, one token per row and step, over its own cache.

    Each line mirrors ``M2M100Decoder.forward`` and ``M2M100DecoderLayer``
    at inference (dropout and layer drop are off), with SDPA attention as
    ``sdpa_attention_forward`` calls it for a single query token, and each
    ``nn.Linear``/``nn.LayerNorm``/``nn.ReLU`` as the functional call its
    ``forward`` makes, on the same weights (a module call's own overhead
    is much of a step's at this size)."""

    def __init__(self, model, encoder_hidden, encoder_mask):
        dec = model.model.decoder
        self.embed, self.positions = dec.embed_tokens, dec.embed_positions
        self.padding_idx = dec.padding_idx
        self.final_norm, self.lm_head = _norm(dec.layer_norm), model.lm_head.weight
        self.layers = [_Layer(layer) for layer in dec.layers]
        rows, width = encoder_hidden.shape[0], encoder_hidden.shape[-1]
        probe = encoder_hidden.new_empty((rows, 1, width))  # only its shape and dtype count
        self.cross_mask = create_bidirectional_mask(
            config=dec.config, inputs_embeds=probe, attention_mask=encoder_mask,
            encoder_hidden_states=encoder_hidden)
        self.keys, self.values, self.cross_keys, self.cross_values = [], [], [], []
        for layer in self.layers:
            empty = encoder_hidden.new_empty((rows, layer.heads, 0, layer.head_dim))
            self.keys.append(empty)
            self.values.append(empty)
            # DynamicCache.update concatenates onto an empty layer: a contiguous copy
            self.cross_keys.append(layer.split(F.linear(encoder_hidden, *layer.cross_k))
                                   .contiguous())
            self.cross_values.append(layer.split(F.linear(encoder_hidden, *layer.cross_v))
                                     .contiguous())
        self.length = 0  # tokens in the self-attention cache

    def logits(self, tokens):
        """float32 logits of the next token, one row per row of ``tokens`` (N, 1)."""
        embed = self.embed
        embeds = F.embedding(tokens, embed.weight, embed.padding_idx, embed.max_norm,
                             embed.norm_type, embed.scale_grad_by_freq,
                             embed.sparse) * embed.embed_scale
        # create_position_ids_from_input_ids for one new token: a padding
        # token keeps the padding position, any other is the next position
        pad = self.padding_idx
        position_ids = torch.where(tokens.ne(pad), self.length + 1 + pad, pad)
        table = self.positions
        if pad + 1 + tokens.shape[1] + self.length > table.weights.size(0):
            table.make_weights(pad + 1 + tokens.shape[1] + self.length + table.offset,
                               table.embedding_dim, pad)  # as its forward grows it
        positions = table.weights.index_select(0, position_ids.view(-1)).view(*tokens.shape, -1)
        hidden = embeds + positions
        shape = hidden.shape[:-1]
        for i, layer in enumerate(self.layers):
            residual = hidden
            hidden = F.layer_norm(hidden, *layer.self_norm)
            query = layer.split(F.linear(hidden, *layer.self_q))
            self.keys[i] = torch.cat([self.keys[i], layer.split(F.linear(hidden, *layer.self_k))],
                                     dim=-2)
            self.values[i] = torch.cat([self.values[i],
                                        layer.split(F.linear(hidden, *layer.self_v))], dim=-2)
            hidden = layer.attend(query, self.keys[i], self.values[i], None, layer.scaling,
                                  shape, layer.self_out)
            hidden = residual + hidden
            residual = hidden
            hidden = F.layer_norm(hidden, *layer.cross_norm)
            hidden = layer.attend(layer.split(F.linear(hidden, *layer.cross_q)),
                                  self.cross_keys[i], self.cross_values[i], self.cross_mask,
                                  layer.cross_scaling, shape, layer.cross_out)
            hidden = residual + hidden
            residual = hidden
            hidden = F.layer_norm(hidden, *layer.final_norm)
            hidden = layer.activation(F.linear(hidden, *layer.fc1))
            hidden = F.linear(hidden, *layer.fc2)
            hidden = residual + hidden
        self.length += tokens.shape[1]
        hidden = F.layer_norm(hidden, *self.final_norm)
        return F.linear(hidden, self.lm_head)[:, -1, :].to(copy=True, dtype=torch.float32)

    def beams_share_cross_states(self, beams: int) -> bool:
        """True when every beam of an input holds bit-identical cross-attention
        keys and values, so reordering beams within an input leaves them as
        they are (beam search never moves a row to another input)."""
        for tensor in self.cross_keys + self.cross_values:
            grouped = tensor.view(-1, beams, *tensor.shape[1:])
            if not torch.equal(grouped, grouped[:, :1].expand_as(grouped)):
                return False
        return True

    def reorder(self, rows, *, cross: bool = True):
        """Beam search's reordering, of both caches as ``EncoderDecoderCache``
        does; ``cross=False`` where ``beams_share_cross_states``."""
        caches = (self.keys, self.values) + ((self.cross_keys, self.cross_values) if cross else ())
        for cache in caches:
            for i, tensor in enumerate(cache):
                cache[i] = tensor.index_select(0, rows)


class _Layer:
    """One ``M2M100DecoderLayer``'s weights, as its modules pass them to torch."""

    def __init__(self, layer):
        attn, cross = layer.self_attn, layer.encoder_attn
        self.heads, self.head_dim, self.scaling = attn.num_heads, attn.head_dim, attn.scaling
        self.cross_scaling = cross.scaling
        self.self_norm, self.cross_norm, self.final_norm = (
            _norm(layer.self_attn_layer_norm), _norm(layer.encoder_attn_layer_norm),
            _norm(layer.final_layer_norm))
        self.self_q, self.self_k, self.self_v, self.self_out = (
            _linear(attn.q_proj), _linear(attn.k_proj), _linear(attn.v_proj),
            _linear(attn.out_proj))
        self.cross_q, self.cross_k, self.cross_v, self.cross_out = (
            _linear(cross.q_proj), _linear(cross.k_proj), _linear(cross.v_proj),
            _linear(cross.out_proj))
        self.fc1, self.fc2 = _linear(layer.fc1), _linear(layer.fc2)
        act = layer.activation_fn
        self.activation = F.relu if type(act) is torch.nn.ReLU and not act.inplace else act

    def split(self, states):
        """(N, T, width) -> (N, heads, T, head_dim), the view M2M100Attention takes."""
        return states.view(*states.shape[:-1], -1, self.head_dim).transpose(1, 2)

    @staticmethod
    def attend(query, key, value, mask, scale, input_shape, out_proj):
        out = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, dropout_p=0.0,
                                             scale=scale, is_causal=False)
        out = out.reshape(out.shape[0], -1, query.shape[2], value.shape[-1])
        out = out.transpose(1, 2).contiguous()
        out = out.reshape(*input_shape, -1).contiguous()
        return F.linear(out, *out_proj)


def _linear(module):
    return module.weight, module.bias


def _norm(module):
    return module.normalized_shape, module.weight, module.bias, module.eps


def _greedy(decoder, ids, processors, eos, pad, max_length):
    """generate()'s ``_sample`` with ``do_sample=False``."""
    unfinished = torch.ones(ids.shape[0], dtype=torch.long, device=ids.device)
    while True:
        scores = _processed(processors, ids, decoder.logits(ids[:, -1:]))
        tokens = torch.argmax(scores, dim=-1)
        tokens = tokens * unfinished + pad * (1 - unfinished)
        ids = torch.cat([ids, tokens[:, None]], dim=-1)
        unfinished = unfinished & ~(tokens == eos)
        if ids.shape[1] >= max_length or not unfinished.any():
            return ids


def _beam(decoder, ids, processors, eos, pad, max_length, beams):
    """generate()'s ``_beam_search`` (length penalty 1, early stopping off,
    one returned sequence), step by step as transformers 5 writes it."""
    batch = ids.shape[0] // beams
    device = ids.device
    cur_len = prompt_len = ids.shape[1]
    keep = 2 * beams  # max(2, 1 + one EOS id) * beams
    top_mask = torch.cat((torch.ones(beams, dtype=torch.bool),
                          torch.zeros(keep - beams, dtype=torch.bool))).to(device)
    fill = pad if pad else eos  # generate()'s "pad_token_id or eos_token_id"
    running = torch.full((batch, beams, max_length), fill, dtype=torch.int64, device=device)
    running[:, :, :cur_len] = ids.view(batch, beams, cur_len)
    sequences = running.detach().clone()
    running_scores = torch.zeros((batch, beams), dtype=torch.float, device=device)
    running_scores[:, 1:] = -1e9
    scores = torch.full((batch, beams), -1e9, dtype=torch.float, device=device)
    finished = torch.zeros((batch, beams), dtype=torch.bool, device=device)
    improvable = torch.ones((batch, 1), dtype=torch.bool, device=device)
    running_origin = torch.full((batch, beams, max_length - cur_len), -1, dtype=torch.int32,
                                device=device)
    origin = running_origin.detach().clone()
    flat = ids
    offset = torch.arange(batch, device=device).view(-1, 1) * beams
    reorder_cross = not decoder.beams_share_cross_states(beams)
    while True:
        logits = decoder.logits(flat[:, -1:])
        log_probs = _processed(processors, flat, F.log_softmax(logits, dim=-1))
        log_probs = log_probs.view(batch, beams, -1) + running_scores[:, :, None]
        log_probs = log_probs.reshape(batch, -1)
        # the best 2 * beams continuations over all beams of each input
        top_scores, top_index = torch.topk(log_probs, k=keep)
        vocab = log_probs.shape[-1] // beams
        top_beam = top_index // vocab
        top_origin = _gather(running_origin, top_beam)
        top_seqs = _gather(running, top_beam)
        top_seqs[:, :, cur_len] = top_index % vocab
        top_origin[:, :, cur_len - prompt_len] = top_beam + offset
        # stopping criteria: the budget, or EOS
        hits = (top_seqs[:, :, cur_len] == eos) | (cur_len + 1 >= max_length)
        # the best beams that go on
        open_scores = top_scores + hits.to(torch.float32) * -1.0e9
        pick = torch.topk(open_scores, k=beams)[1]
        running = _gather(top_seqs, pick)
        running_scores = _gather(open_scores, pick)
        running_origin = _gather(top_origin, pick)
        # the finished hypotheses, kept where they beat those already kept
        just_finished = hits & top_mask[None, :]
        finished_scores = top_scores / ((cur_len + 1 - prompt_len) ** 1.0)
        finished_scores += (~improvable).to(torch.float32) * -1.0e9
        finished_scores += (~just_finished) * -1.0e9
        merged = torch.topk(torch.cat((scores, finished_scores), dim=1), k=beams)[1]
        sequences = _gather(torch.cat((sequences, top_seqs), dim=1), merged)
        scores = _gather(torch.cat((scores, finished_scores), dim=1), merged)
        origin = _gather(torch.cat((origin, top_origin), dim=1), merged)
        finished = _gather(torch.cat((finished, just_finished), dim=1), merged)
        decoder.reorder(running_origin[..., cur_len - prompt_len].reshape(-1), cross=reorder_cross)
        cur_len += 1
        # early stop heuristic (early_stopping False): the best running
        # beam at this length can no longer beat the worst kept one
        best_running = running_scores[:, :1] / ((cur_len - prompt_len) ** 1.0)
        worst_kept = torch.where(finished, torch.min(scores, dim=1, keepdim=True)[0], -1.0e9)
        improvable = improvable & torch.any(best_running > worst_kept, dim=-1, keepdim=True)
        if not (torch.any(improvable) and not torch.all(hits)):
            break
        flat = running[:, :, :cur_len].reshape(batch * beams, cur_len)
    sequences = sequences[:, :1, :].reshape(batch, -1)
    origin = origin[:, :1, :].reshape(batch, -1)
    generated = ((origin + 1).bool()).sum(dim=1).max()
    return sequences[:, :prompt_len + generated]


def _gather(tensor, index):
    while len(index.shape) < len(tensor.shape):
        index = index.unsqueeze(-1)
    return torch.take_along_dim(input=tensor, indices=index, dim=1)
