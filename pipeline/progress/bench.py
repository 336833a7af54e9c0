"""Stage timings on generated documents of given sizes.

Each size is a real job in the given store (so its timings become history
for the profile's weights and ETAs), translated by the given translator.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

from pipeline.config import JobParams, RunSettings
from pipeline.documents.inputs import read_input
from pipeline.jobs import submit
from pipeline.progress import STAGES
from pipeline.runner import run_job
from pipeline.samples import generate_text
from pipeline.store import Store


def bench_sizes(store: Store, make_translator, model: str, sizes: list[int], *,
                settings: RunSettings = RunSettings(), seed: int = 0,
                workdir: Path | None = None) -> list[dict]:
    """One row per size: per-stage wall time, share and rate (units/s).

    One translator serves every size, built by ``make_translator`` and its
    weights loaded before the first timed job, so the smallest size does not
    pay for loading the model.
    """
    rows = []
    translator = None
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        for size in sizes:
            src = Path(tmp) / f"bench-{size}.txt"
            src.write_text(generate_text(size, seed=seed + size))
            params = JobParams(model=model, src_lang="eng_Latn", tgt_lang="fra_Latn",
                               fmt="text", output=str(Path(tmp) / f"bench-{size}.out.txt"),
                               beams=1)
            job, _ = submit(store, params, read_input(src))
            if translator is None:
                translator = make_translator(params)
                translator.load()
            run_job(store, job.id, translator, settings=settings)
            runs = {r.stage: r for r in store.stage_runs(job.id)}
            total = sum(r.wall_s for r in runs.values())
            rows.append({
                "sentences": size, "job": job.id, "total_s": total,
                "stages": {s: {"wall_s": runs[s].wall_s, "share": runs[s].wall_s / total,
                               "units": runs[s].units_done,
                               "rate": runs[s].units_done / runs[s].wall_s if runs[s].wall_s
                               else None} for s in STAGES},
            })
    return rows


def growth_exponents(rows: list[dict]) -> dict[str, float | None]:
    """Per stage, the slope of log(wall time) against log(size) between the
    smallest and largest size: 1.0 is linear, 2.0 quadratic."""
    if len(rows) < 2:
        return {s: None for s in STAGES}
    small, large = rows[0], rows[-1]
    out = {}
    for s in STAGES:
        a, b = small["stages"][s]["wall_s"], large["stages"][s]["wall_s"]
        out[s] = (math.log(b / a) / math.log(large["sentences"] / small["sentences"])
                  if a and b else None)
    return out


def format_table(rows: list[dict]) -> str:
    lines = [f"{'sentences':>9} " + " ".join(f"{s:>22}" for s in STAGES) + f" {'total s':>8}"]
    for row in rows:
        cells = []
        for s in STAGES:
            st = row["stages"][s]
            cells.append(f"{st['wall_s']:8.3f}s {st['share']:5.1%} "
                         f"{(st['rate'] or 0):>7.0f}/s")
        lines.append(f"{row['sentences']:>9} " + " ".join(f"{c:>22}" for c in cells)
                     + f" {row['total_s']:8.2f}")
    lines.append("units: preprocess bytes, inference source tokens, postprocess chunks, "
                 "upload bytes")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    """A stacked bar chart of stage times per size (needs matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        from pipeline.errors import InvalidInput

        raise InvalidInput("--plot needs matplotlib: pip install matplotlib") from None
    fig, ax = plt.subplots(figsize=(7, 4))
    bottoms = [0.0] * len(rows)
    labels = [str(r["sentences"]) for r in rows]
    for s in STAGES:
        values = [r["stages"][s]["wall_s"] for r in rows]
        ax.bar(labels, values, bottom=bottoms, label=s)
        bottoms = [b + v for b, v in zip(bottoms, values)]
    ax.set_xlabel("document size (sentences)")
    ax.set_ylabel("wall time (s)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
