"""``/metrics`` against the real thing (issue 23): Debian's ``prometheus``
package's ``promtool`` accepts a scrape and the shipped rules, and a
Prometheus server on loopback scrapes a running ``serve`` app and answers a
query for a job counter. Skipped, saying why, where the binaries are absent
(``scripts/dev.py test`` installs them when run as root; CI does)."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from pipeline.store import Store
from tests.api_support import make_app, served
from tests.conftest import wait_until
from tests.test_metrics import fill

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "deploy" / "monitoring" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "monitoring" / "grafana-dashboard.json"
PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (apt-get install prometheus)")


def filled_scrape(tmp_path) -> str:
    """A scrape with every family present: jobs, attempts, histograms, requests."""
    fill(Store(tmp_path / "jobs.db"), 20)
    client = TestClient(make_app(tmp_path))
    client.get("/api/jobs")
    client.get("/api/jobs/nope")
    return client.get("/metrics").text


@needs_promtool
def test_promtool_accepts_a_scrape(tmp_path):
    text = filled_scrape(tmp_path)
    assert "nllb_stage_duration_seconds_bucket{" in text
    checked = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                             text=True, timeout=60)
    assert checked.returncode == 0 and not checked.stdout.strip(), checked.stdout + checked.stderr


@needs_promtool
def test_promtool_accepts_the_shipped_rules():
    checked = subprocess.run([PROMTOOL, "check", "rules", str(RULES)], capture_output=True,
                             text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 5 rules found" in checked.stdout


def test_the_dashboard_queries_only_metrics_that_exist(tmp_path):
    import json
    import re

    names = {line.split()[2] for line in filled_scrape(tmp_path).splitlines()
             if line.startswith("# TYPE ")}
    exposed = set(names)
    for name in names:  # what a histogram and a counter add to their family's name
        exposed |= {name + s for s in ("_bucket", "_sum", "_count", "_total")}
    panels = json.loads(DASHBOARD.read_text())["panels"]
    queried = {m for p in panels for t in p.get("targets", [])
               for m in re.findall(r"\bnllb_[a-z_]+", t["expr"])}
    assert queried and queried <= exposed, queried - exposed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.skipif(PROMETHEUS is None, reason="prometheus not installed "
                    "(apt-get install prometheus)")
def test_a_prometheus_server_scrapes_serve_and_answers_for_a_job_counter(tmp_path):
    fill(Store(tmp_path / "jobs.db"), 8)  # 4 of them SUCCEEDED (tests.test_metrics.fill)
    app = make_app(tmp_path, token="s3cret")
    port = _free_port()
    with served(app) as url:
        target = url.removeprefix("http://")
        config = tmp_path / "prometheus.yml"
        config.write_text(f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: [{RULES}]
scrape_configs:
  - job_name: nllb-pipeline
    authorization: {{credentials: s3cret}}
    static_configs: [{{targets: ["{target}"]}}]
""")
        server = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL, stderr=(tmp_path / "prometheus.log").open("w"))
        api = f"http://127.0.0.1:{port}/api/v1"

        def answered():
            if server.poll() is not None:
                raise AssertionError((tmp_path / "prometheus.log").read_text()[-2000:])
            try:
                answer = httpx.get(f"{api}/query", params={
                    "query": 'nllb_jobs_finished_total{outcome="SUCCEEDED"}'})
            except httpx.TransportError:
                return None
            if answer.status_code != 200:  # starting up: "Service Unavailable"
                return None
            found = answer.json().get("data", {}).get("result", [])
            return found and float(found[0]["value"][1])

        try:
            assert wait_until(answered, "Prometheus to scrape serve", timeout=90) == 4
            up = httpx.get(f"{api}/query", params={"query": "up"}).json()["data"]["result"]
            assert [r["value"][1] for r in up] == ["1"]  # with the token
            def rules():
                found = httpx.get(f"{api}/rules").json()["data"]["groups"][0]["rules"]
                assert len(found) == 5 and "err" not in {r["health"] for r in found}, found
                return {r["health"] for r in found} == {"ok"}

            wait_until(rules, "the rules to be evaluated", timeout=30)
        finally:
            server.terminate()
            server.wait(timeout=30)
