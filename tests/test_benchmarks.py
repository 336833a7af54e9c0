"""The benchmarks still run: each at its smallest, so a change to the CLI
or the store that breaks one is caught here rather than by the next person
who measures. (The figures themselves are not checked: they are measured
on a quiet machine, by hand.) Each script runs in a process ``tests.warm``
forks, so torch is imported once for all of them; what a script starts
itself starts as it would by hand.

Every script in ``benchmarks/`` has an entry in ``SMOKE``, and a test that
needs no model checks that none is missing: a new benchmark without a smoke
run fails the suite. Modules whose names start with ``_`` are helpers the
benchmarks share, not benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from tests import warm
from tests.conftest import ROOT, cli_env

BENCHMARKS = ROOT / "benchmarks"
TINY = "{tiny}"  # replaced by the session's tiny model (and its conversion), made once
# The trained test model (models/trained.py) and its conversion, made once: it
# ends its sentences, so a benchmark whose smoke run only needs some model (not
# one that runs every line to its budget) decodes a fraction of the steps.
TRAINED = "{trained}"


@dataclass(frozen=True)
class Smoke:
    """How to run one benchmark at its smallest, and what its output must say."""

    args: tuple[str, ...]
    says: tuple[str, ...]  # substrings of stdout
    needs: str | None = None  # an optional extra's module, skipped where absent
    never_says: tuple[str, ...] = field(default=())


SMOKE: dict[str, Smoke] = {
    "api.py": Smoke(("--jobs", "40", "--clients", "2", "--seconds", "0.3", "--interval", "0.1"),
                    ("store: 40 jobs", "saturated", "detail")),
    # Builds its own tiny model in the (per-test) cache: it names models by shape.
    "backends.py": Smoke(("--models", "tiny", "--sentences", "8"),
                         ("(a) raw CTranslate2", "(b) pipeline, CTranslate2", "by cpu time:")),
    "batch_cost.py": Smoke(("--sizes", "300,600"), ("ms CPU a batch", "the 300-line figure")),
    "determinism.py": Smoke(("--model", TINY, "--sentences", "4"),
                            ("beams 1:", "beams 4:", "largest first-step logit difference")),
    "documents.py": Smoke(("--sizes", "300"), ("html", "markdown", "us/line")),
    "durability.py": Smoke(("--lines", "300", "--repeats", "1"),
                           ("synchronous=NORMAL", "FULL / NORMAL")),
    "faults.py": Smoke(("--model", TINY, "--sentences", "6", "--rates", "0,0.5"),
                       ("OOM rate", "SUCCEEDED")),
    "memory.py": Smoke(("--model", TINY, "--sentences", "20", "--edited", "0.1",
                        "--subtitle-cues", "30"),
                       ("second / first", "output identical to a from-scratch run: True",
                        "subtitles")),
    "placeholders.py": Smoke(("--lines", "40", "--files", "markdown_rich_README.md"),
                             ("protected pieces that survive", "1-32", "all files")),
    "peak_memory.py": Smoke(("--sizes", "200,400"), ("growth per line",)),
    "read_commands.py": Smoke(("--jobs", "200", "--repeats", "1"),
                              ("status / raw:", "stats --json --since 7", "a fresh process")),
    "quality.py": Smoke(("--model", TINY, "--sentences", "20", "--infer", "4", "--repeat", "1",
                         "--threads", "1"),
                        ("checks / inference",)),
    "hf_call.py": Smoke(("--repeat", "1", "--batches", "1", "--only", "trained"),
                        ("ms CPU per step", "fixed per call", "batch   1, budget")),
    "job_queue.py": Smoke(("--model", TINY, "--documents", "5", "--worker-documents", "2"),
                          ("submit: 5 documents", "status with 5 queued jobs",
                           "two workers / one")),
    "ray_executor.py": Smoke(("--documents", "2", "--sentences", "3", "--d-model", "64",
                              "--layers", "1", "--local-threads", "1",
                              "--ceiling-sentences", "300"),
                             ("outputs identical to the local worker's: True",
                              "round trip overhead", "store ceiling at 8192"), needs="ray"),
    # Its default model, the trained one, as it runs by hand; the raw loop
    # samples every other batch, as --raw-every does on a corpus of millions.
    "scale.py": Smoke(("--sizes", "200", "--beams", "1", "--raw-every", "2",
                       "--sample-above", "100"),
                      ("translations identical:", "| 200 | 1 |", "pipeline/raw throughput",
                       "raw loop replayed", "the loop's calls on the same batches",
                       "ms a batch for the pipeline")),
    "stage_scaling.py": Smoke(("--model", TRAINED, "--sizes", "5,10"),
                              ("growth exponent",)),
    "training_step.py": Smoke(("--steps", "2"), ("recipe", "packed", "CPU s/1000 real")),
    # Every row runs to its budget (random weights, by design): 4 sentences make
    # 3 planned batches and run each of the six methods at both widths, as 12 did.
    "throughput.py": Smoke(("--model", TINY, "--sentences", "4", "--beams", "1,4",
                            "--threads", "1", "--quality", "off"),
                           ("== beams 1 ==", "== beams 4 ==", "cost of batch independence"),
                           never_says=("pipeline failed", " 0.00 s inside translate_batch")),
}


def benchmark_scripts() -> set[str]:
    return {p.name for p in BENCHMARKS.glob("*.py") if not p.name.startswith("_")}


def test_every_benchmark_has_a_smoke_run():
    assert benchmark_scripts() - set(SMOKE) == set(), "add these to SMOKE"
    assert set(SMOKE) - benchmark_scripts() == set(), "SMOKE names scripts that are gone"


def bench(tmp_path, script: str, *args: str) -> str:
    proc = warm.run([str(BENCHMARKS / script), *args], cwd=tmp_path, timeout=280,
                    env=cli_env(tmp_path / "jobs.db"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("script", [
    # The Ray benchmark starts a Ray instance: it runs in tests/test_ray.py's
    # pytest-xdist worker, one Ray at a time.
    pytest.param(name, marks=pytest.mark.xdist_group("ray")) if SMOKE[name].needs == "ray"
    else name for name in sorted(SMOKE)])
def test_benchmark_runs_at_its_smallest(script, tmp_path, tiny_model, trained_model):
    smoke = SMOKE[script]
    if smoke.needs:
        pytest.importorskip(smoke.needs, reason=f"{smoke.needs} is not installed")
    models = {TINY: str(tiny_model), TRAINED: str(trained_model)}
    args = tuple(models.get(a, a) for a in smoke.args)
    out = bench(tmp_path, script, *args)
    for text in smoke.says:
        assert text in out, f"{text!r} not in the output of {script}:\n{out[-3000:]}"
    for text in smoke.never_says:
        assert text not in out, out[-3000:]

