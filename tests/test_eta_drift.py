"""ETA drift acted on (issue 23, part 2): a profile whose recent ETAs are
off past the threshold is recalibrated from its recent jobs, says so once,
and shows it in /metrics."""

from __future__ import annotations

import logging

import pytest

from pipeline.cli import main
from pipeline.errors import InvalidInput
from pipeline.monitoring.drift import EtaDrift, check_after_job
from pipeline.progress.profiles import history_for
from pipeline.store import Store
from pipeline.translator import TranslatorInfo

PROFILE = ("m", "ctranslate2", "cpu", "int8")


class Described:
    """A translator as far as history_for asks: where it runs."""

    def describe(self):
        return TranslatorInfo(backend="ctranslate2", model="m", device="cpu", compute_type="int8",
                              default_batch_tokens=2048, max_input_tokens=512,
                              max_output_tokens=512)


def add_job(store: Store, n: int, inference_s: float, predicted_at_50: float) -> str:
    """A succeeded job of PROFILE: 1 s of preprocess, postprocess and upload
    each, ``inference_s`` for 1,000 tokens, finished at time 1000 + n."""
    job = f"{n:012x}"
    at = 1000.0 + n
    sql = store.db.conn
    sql.execute("INSERT INTO jobs (id, idem_key, state, stage, params, input_path, input_sha256, "
                "input_bytes, created_at, updated_at) VALUES (?, ?, 'RUNNING', 'upload', '{}', "
                "'in.txt', 'x', 100, ?, ?)", (job, job, at, at))
    for stage, wall, units in (("preprocess", 1.0, 100), ("inference", inference_s, 1000),
                               ("postprocess", 1.0, 10), ("upload", 1.0, 10)):
        sql.execute("INSERT INTO stage_runs (job_id, stage, started_at, finished_at, wall_s, "
                    "units_total, units_done, model, backend, device, dtype) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (job, stage, at - wall, at, wall, units, units, *PROFILE))
    sql.execute("INSERT INTO eta_predictions VALUES (?, 50, 1.0, ?, ?)", (job, predicted_at_50, at))
    sql.execute("UPDATE jobs SET state = 'SUCCEEDED', finished_at = ? WHERE id = ?", (at, job))
    return job


def test_a_drifting_profile_is_recalibrated_from_its_recent_jobs_and_says_so_once(
        tmp_path, caplog):
    store = Store(tmp_path / "jobs.db")
    for n in range(10):  # 100 tok/s, ETAs right
        check_after_job(store, add_job(store, n, 10.0, 13.0), EtaDrift())
    assert store.eta_drifts()[0].drifting is False
    for n in range(10, 19):  # the machine slowed to 25 tok/s; ETAs still say 16 s for 43
        add_job(store, n, 40.0, 16.0)
    before = history_for(store, Described(), "m")
    assert before.rates["inference"] == pytest.approx(100.0)  # the old regime still rules
    caplog.set_level(logging.WARNING, logger="nllb_pipeline")
    assert check_after_job(store, add_job(store, 19, 40.0, 16.0), EtaDrift()) is True
    drift = store.eta_drifts()[0]
    assert (drift.drifting, drift.recalibrations, drift.window) == (True, 1, 10)
    assert drift.error == pytest.approx(27 / 43)
    after = history_for(store, Described(), "m")
    assert after.rates["inference"] == pytest.approx(25.0)  # the recent jobs only
    assert after.weights["inference"] == pytest.approx(40 / 43)
    warnings = [r.getMessage() for r in caplog.records if "ETA drift" in r.getMessage()]
    assert warnings == ["ETA drift: m on cpu (ctranslate2 int8): median ETA error at 50% over "
                        "the last 10 jobs is 63% (threshold 25%); stage weights and rates now "
                        "come from those jobs"]
    # Still drifting at the next job: no second warning, no second recalibration,
    # and the window widens back towards 20 as jobs of the new regime come.
    assert check_after_job(store, add_job(store, 20, 40.0, 16.0), EtaDrift()) is True
    drift = store.eta_drifts()[0]
    assert (drift.recalibrations, drift.window) == (1, 11)
    assert len([r for r in caplog.records if "ETA drift" in r.getMessage()]) == 1
    # Accurate again: no longer drifting, and the next drift warns again.
    for n in range(21, 31):
        check_after_job(store, add_job(store, n, 40.0, 43.0), EtaDrift())
    assert store.eta_drifts()[0].drifting is False
    assert store.eta_drifts()[0].window == 20
    for n in range(31, 41):
        check_after_job(store, add_job(store, n, 40.0, 80.0), EtaDrift(jobs=5))
    assert store.eta_drifts()[0].recalibrations == 2
    assert len([r for r in caplog.records if "ETA drift" in r.getMessage()]) == 2


def test_the_metrics_show_the_drift(tmp_path):
    from prometheus_client.parser import text_string_to_metric_families

    from pipeline.monitoring.exposition import render, store_registry

    store = Store(tmp_path / "jobs.db")
    for n in range(3):
        check_after_job(store, add_job(store, n, 40.0, 16.0), EtaDrift(threshold=0.5, jobs=3))
    text = render(store_registry(lambda: store)).decode()
    samples = {(s.name, s.labels.get("device")): s.value
               for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples[("nllb_eta_drifting", "cpu")] == 1.0
    assert samples[("nllb_eta_recalibrations_total", "cpu")] == 1.0
    assert samples[("nllb_eta_drift_ratio", "cpu")] == pytest.approx(27 / 43)


def test_too_few_jobs_are_not_judged_and_off_is_off(tmp_path):
    store = Store(tmp_path / "jobs.db")
    for n in range(9):
        assert check_after_job(store, add_job(store, n, 40.0, 16.0), EtaDrift()) is None
    assert store.eta_drifts() == []
    assert check_after_job(store, add_job(store, 9, 40.0, 16.0), EtaDrift.parse("off")) is None
    assert store.eta_drifts() == []


@pytest.mark.parametrize("spec, said", [
    ("threshold=abc", "threshold must be a number"), ("mark=33", "mark must be one of"),
    ("jobs=0", "jobs must be 1-20"), ("jobs=21", "jobs must be 1-20"),
    ("limit=3", "bad ETA drift setting 'limit=3'"), ("threshold=nan", "percentage > 0"),
    ("threshold=0", "percentage > 0"),
])
def test_bad_specs_are_refused_with_what_is_wrong(spec, said):
    with pytest.raises(InvalidInput, match=said):
        EtaDrift.parse(spec)


def test_the_spec_parses_into_fractions():
    assert EtaDrift.parse("threshold=40,mark=75,jobs=5") == EtaDrift(0.4, 75, 5)
    assert EtaDrift.parse("") == EtaDrift() == EtaDrift(0.25, 50, 10)


def test_a_bad_eta_drift_flag_or_variable_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    doc = tmp_path / "d.txt"
    doc.write_text("One sentence.\n")
    args = ["--db", str(tmp_path / "j.db"), "submit", str(doc), "--src", "eng_Latn", "--tgt",
            "fra_Latn"]
    assert main(["--db", str(tmp_path / "j.db"), "worker", "--idle-exit", "0",
                 "--eta-drift", "mark=33"]) == 2
    assert "mark must be one of 10, 25, 50, 75, 90" in capsys.readouterr().err
    monkeypatch.setenv("NLLB_PIPELINE_ETA_DRIFT", "jobs=99")
    assert main(["--db", str(tmp_path / "j.db"), "worker", "--idle-exit", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nllb-pipeline: error: $NLLB_PIPELINE_ETA_DRIFT: ") and "1-20" in err
    assert len(err.splitlines()) == 1 and args


@pytest.mark.slow
def test_a_worker_judges_each_succeeded_job(tmp_path, capsys, trained_model):
    """Through the CLI: a threshold no real ETA meets, judged over one job."""
    import random

    words = "river stone light morning table garden letter window city music paper".split()
    db = str(tmp_path / "j.db")
    for n in (1, 2):
        rng = random.Random(n)
        doc = tmp_path / f"d{n}.txt"
        doc.write_text("\n\n".join(" ".join(rng.choice(words) for _ in range(8)).capitalize()
                                    + "." for _ in range(40)))
        assert main(["--db", db, "translate", str(doc), "--src", "eng_Latn", "--tgt", "fra_Latn",
                     "--model", str(trained_model), "--threads", "1", "--no-progress",
                     "--eta-drift", "threshold=0.0001,jobs=1"]) == 0
    err = capsys.readouterr().err
    assert err.count("nllb-pipeline: warning: ETA drift: ") == 1, err
    (drift,) = Store(db).eta_drifts()
    assert drift.drifting and drift.recalibrations == 1 and drift.backend == "ctranslate2"
