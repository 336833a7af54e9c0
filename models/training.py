"""The trained test model's training loop: two processes, data parallel.

Profiled on the old loop (one process, 32 sentences a step, padded to the
batch's longest): the sentence generator, the tokenizer, the labels and
AdamW were 6% of a step; the forward and backward passes were the rest, and
half of the tokens they went through were padding. So:

- a step is a constant budget of padded tokens, not of sentences: a pool
  of sentences of every length is tokenized at once, sorted by length and
  cut into batches of up to ``budget`` padded tokens (a few long sentences
  or many short ones), whose order is then shuffled; padding falls to a few
  per cent;
- the sentences' lengths follow the caller's curriculum (``phases``: from
  which step, which lengths), a feed a phase, all drawing on the one seeded
  random source; the budget makes a step of long sentences cost about what
  a step of short ones costs;
- the output projection and its log-softmax (a 2,203-word vocabulary) see
  only the positions that have a label, not the padding;
- two ranks (one thread each) share each batch, one sentence in two; the
  gradients are gathered and added in rank order on both ranks, so both
  hold the same bits, and the weights depend on the seed and the number
  of ranks (fixed: ``RANKS``), never on the machine's scheduling. (A sum
  of two tensors is commutative, so ``all_reduce`` would give the same;
  the explicit order says so.) One thread per rank: the same kernels in the
  same order.
- ``layerdrop`` is off: a layer skipped on one rank has no gradient there,
  and on a task with no noise to regularise against it only slows learning.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

RANKS = 2


Pair = tuple[list[int], list[int]]  # a sentence's source ids and label ids


def batches(sentences: Callable[[int], list[str]], tok,
            target_ids: Callable[[list[int]], list[int]], tgt_id: int, budget: int, rng,
            pool: int = 512) -> Iterator[list[Pair]]:
    """Endless batches of (source ids, label ids), each of at most
    ``budget`` padded source tokens, from pools of ``pool`` sentences."""
    while True:
        encoded = tok(sentences(pool), add_special_tokens=True)["input_ids"]
        pairs = sorted(((ids, [tgt_id, *target_ids(ids[1:-1]), tok.eos_token_id])
                        for ids in encoded), key=lambda pair: len(pair[0]))
        out: list[list[Pair]] = [[]]
        for pair in pairs:  # ascending, so the last one added is the longest
            if out[-1] and (len(out[-1]) + 1) * len(pair[0]) > budget:
                out.append([])
            out[-1].append(pair)
        rng.shuffle(out)
        yield from out


def _padded(rows: list[list[int]], value: int):
    import torch

    longest = max(map(len, rows))
    return torch.tensor([row + [value] * (longest - len(row)) for row in rows])


def _loss(model, part, pad: int, start: int, total_labels: int):
    """This rank's share of the batch's mean token loss."""
    import torch.nn.functional as F

    sources = _padded([ids for ids, _ in part], pad)
    labels = _padded([lab for _, lab in part], -100)
    decoder_in = _padded([[start, *lab[:-1]] for _, lab in part], pad)
    hidden = model.model(input_ids=sources, attention_mask=(sources != pad).long(),
                         decoder_input_ids=decoder_in).last_hidden_state
    keep = labels != -100
    logits = model.lm_head(hidden[keep])
    return F.cross_entropy(logits, labels[keep], reduction="sum") / total_labels


def train_rank(rank: int, base: str, init_file: str, out: str, seed: int, steps: int,
               budget: int, lr: float, phases: Sequence[tuple[int, Sequence[int]]]) -> None:
    """One rank's loop (run in its own process by :func:`train`)."""
    import random

    import torch
    import torch.distributed as dist
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from models.trained import SRC, TGT, Task, _sentences, _vocabulary

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=RANKS)
    try:
        tok = AutoTokenizer.from_pretrained(base, src_lang=SRC)
        task = Task(tok, seed)
        words, names = _vocabulary(task)
        rng = random.Random(seed)  # the same batches on every rank; each takes its share
        torch.manual_seed(seed)
        model = AutoModelForSeq2SeqLM.from_pretrained(base)
        model.config.encoder_layerdrop = model.config.decoder_layerdrop = 0.0
        model.model.encoder.layerdrop = model.model.decoder.layerdrop = 0.0
        model.train()
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0, foreach=True)
        warmup = max(1, steps // 20)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: min(1.0, (s + 1) / warmup) * max(0.05, 1 - s / steps))
        tgt = tok.convert_tokens_to_ids(TGT)
        feeds = [(first, batches(lambda n, lengths=tuple(lengths): _sentences(
                      rng, words, names, n, lengths), tok, task.target_ids, tgt, budget, rng))
                 for first, lengths in phases]
        pad, start = tok.pad_token_id, model.config.decoder_start_token_id
        gathered = [torch.empty(sum(p.numel() for p in params)) for _ in range(RANKS)]
        started, cpu = time.perf_counter(), time.process_time()
        for step in range(steps):
            batch = next([feed for first, feed in feeds if first <= step][-1])
            total = sum(len(lab) for _, lab in batch)
            part = batch[rank::RANKS]
            if part:
                loss = _loss(model, part, pad, start, total)
                loss.backward()
                flat = torch.cat([p.grad.reshape(-1) for p in params])
                optimizer.zero_grad(set_to_none=False)
            else:
                loss, flat = torch.zeros(()), torch.zeros_like(gathered[0])
            dist.all_gather(gathered, flat)
            summed = gathered[0].clone()
            for other in gathered[1:]:
                summed += other
            offset = 0
            for p in params:
                n = p.numel()
                p.grad = summed[offset:offset + n].view_as(p)  # summed is this step's own
                offset += n
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            if rank == 0 and (step % 200 == 0 or step == steps - 1):
                print(f"  step {step}/{steps}: loss {loss.item():.4f} (rank 0's share; "
                             f"{time.perf_counter() - started:.0f} s, "
                             f"{time.process_time() - cpu:.0f} CPU s a rank)", flush=True)
        if rank == 0:
            model.eval()
            model.save_pretrained(out, safe_serialization=True)
        # The ranks tear gloo down together: rank 1 doing so while rank 0
        # still saved once aborted it at exit ("terminate called without an
        # active exception", exit -6), failing a build that had succeeded.
        dist.barrier()
    finally:
        dist.destroy_process_group()


def train(base: Path, out: Path, *, seed: int, steps: int, budget: int, lr: float,
          phases: Sequence[tuple[int, Sequence[int]]], log=print) -> None:
    """Train ``base`` into ``out`` on ``RANKS`` processes (``python -m
    models.training``: a fresh interpreter, so the caller's ``__main__`` is
    never run again, as multiprocessing's spawn would)."""
    root = Path(__file__).resolve().parents[1]
    # The ranks run from the root and meet at a file:// URL: both need absolute paths.
    base, out = Path(base).resolve(), Path(out).resolve()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(root), *filter(None, [os.environ.get("PYTHONPATH")])])}
    args = json.dumps({"base": str(base), "init_file": str(out.parent / ".rendezvous"),
                       "out": str(out), "seed": seed, "steps": steps, "budget": budget, "lr": lr,
                       "phases": phases})
    procs = [subprocess.Popen([sys.executable, "-m", "models.training", str(rank), args],
                              env=env, cwd=root, text=True,
                              stdout=subprocess.PIPE if rank == 0 else subprocess.DEVNULL)
             for rank in range(RANKS)]
    try:
        for line in procs[0].stdout:
            log(line.rstrip("\n"))
        codes = [p.wait() for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    if any(codes):
        raise RuntimeError(f"training failed: rank exit codes {codes}")


if __name__ == "__main__":
    train_rank(int(sys.argv[1]), **json.loads(sys.argv[2]))
