#!/usr/bin/env python3
"""What is left of padding's floating-point effect: each sentence alone
against the same sentence inside the pipeline's batches, same budget.

    python benchmarks/determinism.py                        # tiny model, generated text
    python benchmarks/determinism.py --corpus ../shared/corpus/flores200_devtest.eng_Latn.txt
    python benchmarks/determinism.py --d-model 512 --layers 6 --sentences 100
    python benchmarks/determinism.py --backend ctranslate2 --dtype int8

The pipeline gives every member of a batch the same output budget, so beam
search cannot be changed by a neighbour's budget. What remains is padding:
a batch pads every input to its longest member, and the padded matrix
products sum in another order than the unpadded ones, so logits can differ
in their last bits. This script measures how often that changes a
translation: every sentence is translated alone (no padding at all) and in
the batches ``plan_batches`` makes at ``--batch-tokens``, at beams 1 and 4,
and the differing outputs are counted, with the largest logit difference
seen on the first decoding step.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models import HfTranslator, build_tiny_model  # noqa: E402
from models.ct2 import Ct2Translator  # noqa: E402
from pipeline.batching import plan_batches  # noqa: E402
from pipeline.config import RunSettings  # noqa: E402
from pipeline.samples import generate_text  # noqa: E402
from pipeline.documents.segment import split_sentences  # noqa: E402
from pipeline.translator import Decoding  # noqa: E402

SRC, TGT = "eng_Latn", "fra_Latn"


class _Chunk:
    def __init__(self, idx: int, n_tokens: int):
        self.idx, self.n_tokens = idx, n_tokens


def sentences(args) -> list[str]:
    if args.corpus:
        lines = Path(args.corpus).read_text(encoding="utf-8").splitlines()
        return [line.strip() for line in lines if line.strip()][: args.sentences]
    text = generate_text(args.sentences, seed=args.seed)
    return [s.strip() for p in text.split("\n\n") for s in split_sentences(p, SRC) if s.strip()]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="model directory or hub id (default: build a tiny model)")
    p.add_argument("--d-model", type=int, default=64, help="tiny model width (default 64)")
    p.add_argument("--layers", type=int, default=2, help="tiny model layers (default 2)")
    p.add_argument("--sentences", type=int, default=200, help="sentences (default 200)")
    p.add_argument("--corpus", help="a file of one sentence per line instead of generated text")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-tokens", type=int, default=4096, help="token budget (default 4096)")
    p.add_argument("--threads", type=int, default=1, help="backend threads (default 1)")
    p.add_argument("--backend", default="hf", choices=("hf", "ctranslate2"))
    p.add_argument("--dtype", default="auto",
                   help="auto (float32 for hf, int8 for ctranslate2 on CPU), float32, int8, ...")
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or str(build_tiny_model(Path(tmp) / "tiny", d_model=args.d_model,
                                                   layers=args.layers))
        settings = RunSettings(device="cpu", threads=args.threads, dtype=args.dtype)
        tr = (HfTranslator(model, settings) if args.backend == "hf"
              else Ct2Translator(model, settings))
        texts = sentences(args)
        counts = tr.count_tokens(texts)
        cap = tr.describe().max_output_tokens

        def budget(n: int) -> int:
            from pipeline.budget import output_budget

            return output_budget(n, 2.0, 16, cap)

        chunks = [_Chunk(i, n) for i, n in enumerate(counts)]
        plan = plan_batches(chunks, args.batch_tokens, 256, budget)
        info = tr.describe()
        print(f"{info.backend} {info.compute_type}: {len(texts)} sentences, {len(plan)} batches "
              f"at --batch-tokens {args.batch_tokens}")
        for beams in (1, 4):
            alone, batched = {}, {}
            for c in chunks:
                d = Decoding(beams=beams, max_new_tokens=budget(c.n_tokens))
                alone[c.idx] = tr.translate_batch([texts[c.idx]], SRC, TGT, d)[0].text
            for batch in plan:
                d = Decoding(beams=beams, max_new_tokens=budget(batch[0].n_tokens))
                out = tr.translate_batch([texts[c.idx] for c in batch], SRC, TGT, d)
                batched.update({c.idx: t.text for c, t in zip(batch, out)})
            differ = [i for i in alone if alone[i] != batched[i]]
            print(f"beams {beams}: {len(differ)} of {len(texts)} translations differ between "
                  f"alone and batched ({100 * len(differ) / len(texts):.2f}%)")
        if args.backend == "hf":
            print(f"largest first-step logit difference, alone vs batched: "
                  f"{logit_gap(tr, texts, plan):.3g}")
    return 0


def logit_gap(tr, texts: list[str], plan) -> float:
    """Max |logit alone - logit batched| on the first decoder step."""
    import torch

    tr.load()
    model, tok = tr._model, tr.tokenizer
    tok.src_lang = SRC
    start = torch.tensor([[model.config.decoder_start_token_id,
                           tok.convert_tokens_to_ids(TGT)]])
    gap = 0.0
    with torch.inference_mode():
        for batch in plan:
            group = [texts[c.idx] for c in batch]
            enc = tok(group, return_tensors="pt", padding=True)
            together = model(**enc, decoder_input_ids=start.repeat(len(group), 1)).logits[:, -1]
            for row, text in enumerate(group):
                one = tok([text], return_tensors="pt")
                single = model(**one, decoder_input_ids=start).logits[0, -1]
                gap = max(gap, (single - together[row]).abs().max().item())
    return gap


if __name__ == "__main__":
    sys.exit(main())
