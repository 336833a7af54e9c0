"""The benchmarks still run: each at its smallest, so a change to the CLI
or the store that breaks one is caught here rather than by the next person
who measures. (The figures themselves are not checked: they are measured
on a quiet machine, by hand.)"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT, cli_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def bench(tmp_path, script: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args],
                          capture_output=True, text=True, cwd=tmp_path, timeout=280,
                          env=cli_env(tmp_path / "jobs.db"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_throughput_runs_and_reports_the_cost_of_batch_independence(tmp_path):
    out = bench(tmp_path, "throughput.py", "--sentences", "12", "--beams", "1,4",
                "--threads", "1", "--quality", "off")
    assert out.count("cost of batch independence") == 2
    assert "pipeline failed" not in out


def test_ray_executor_runs_and_its_outputs_match_a_local_worker(tmp_path):
    pytest.importorskip("ray", reason="the ray extra is not installed")
    out = bench(tmp_path, "ray_executor.py", "--documents", "2", "--sentences", "3",
                "--d-model", "64", "--layers", "1", "--local-threads", "1",
                "--ceiling-sentences", "300")
    assert "outputs identical to the local worker's: True" in out
    assert "round trip overhead" in out and "store ceiling at 8192" in out
