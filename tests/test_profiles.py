"""Stage weights and rates from a store with planted stage timings."""

from __future__ import annotations

import pytest

from pipeline.progress.profiles import Profile, stage_history
from pipeline.progress import DEFAULT_WEIGHTS
from pipeline.store import Store

CPU = Profile("facebook/nllb-200-distilled-600M", "hf", "cpu", "float32")
GPU = Profile("facebook/nllb-200-distilled-600M", "hf", "cuda:0", "bfloat16")
CT2_CPU = Profile("facebook/nllb-200-distilled-600M", "ctranslate2", "cpu", "float32")


class Clock:
    t = 1_000.0

    def __call__(self):
        return self.t


def plant(store: Store, clock: Clock, profile: Profile, walls: dict[str, float],
          units: dict[str, float], state: str = "SUCCEEDED") -> str:
    job, _ = store.get_or_create_job(
        idem_key=f"k{clock.t}", params="{}", input_path="/in", input_sha256="h",
        input_bytes=1, output_path="/out")
    for stage in ("preprocess", "inference", "postprocess", "upload"):
        run = store.start_stage(job.id, stage, units_total=units[stage],
                                device=profile.device if stage == "inference" else None,
                                model=profile.model if stage == "inference" else None,
                                dtype=profile.dtype if stage == "inference" else None,
                                backend=profile.backend if stage == "inference" else None)
        clock.t += walls[stage]
        with store._write():
            store._close_stage_run(run)
    store.set_job_state(job.id, state)
    return job.id


UNITS = {"preprocess": 10_000, "inference": 2_000, "postprocess": 100, "upload": 10_000}


def test_no_history_gives_the_defaults(tmp_path):
    history = stage_history(Store(tmp_path / "j.db"), CPU)
    assert history.weights == DEFAULT_WEIGHTS and history.jobs == 0 and history.rates == {}


def test_weights_are_median_shares_and_rates_median_units_per_second(tmp_path):
    clock = Clock()
    store = Store(tmp_path / "j.db", clock=clock)
    plant(store, clock, CPU, {"preprocess": 1, "inference": 95, "postprocess": 2, "upload": 2},
          UNITS)
    plant(store, clock, CPU, {"preprocess": 2, "inference": 190, "postprocess": 4, "upload": 4},
          UNITS)
    # an outlier: a slow upload; the median keeps it from moving the weights much
    plant(store, clock, CPU, {"preprocess": 1, "inference": 95, "postprocess": 2, "upload": 102},
          UNITS)
    history = stage_history(store, CPU)
    assert history.jobs == 3
    assert history.weights == pytest.approx(
        {"preprocess": 0.01, "inference": 0.95, "postprocess": 0.02, "upload": 0.02})
    assert history.rates["inference"] == pytest.approx(2000 / 95)
    assert history.rates["preprocess"] == pytest.approx(10_000)


def test_profiles_do_not_mix_and_failed_jobs_do_not_count(tmp_path):
    clock = Clock()
    store = Store(tmp_path / "j.db", clock=clock)
    plant(store, clock, GPU, {"preprocess": 1, "inference": 5, "postprocess": 1, "upload": 3},
          UNITS)
    plant(store, clock, CPU, {"preprocess": 1, "inference": 95, "postprocess": 2, "upload": 2},
          UNITS, state="FAILED")
    assert stage_history(store, CPU).weights == DEFAULT_WEIGHTS
    assert stage_history(store, GPU).weights == pytest.approx(
        {"preprocess": 0.1, "inference": 0.5, "postprocess": 0.1, "upload": 0.3})


def test_the_same_device_and_dtype_on_another_backend_is_another_profile(tmp_path):
    clock = Clock()
    store = Store(tmp_path / "j.db", clock=clock)
    plant(store, clock, CT2_CPU, {"preprocess": 1, "inference": 25, "postprocess": 2,
                                  "upload": 2}, UNITS)
    plant(store, clock, CPU, {"preprocess": 1, "inference": 95, "postprocess": 2, "upload": 2},
          UNITS)
    assert stage_history(store, CT2_CPU).rates["inference"] == pytest.approx(2000 / 25)
    assert stage_history(store, CPU).rates["inference"] == pytest.approx(2000 / 95)
    assert str(CT2_CPU) == "facebook/nllb-200-distilled-600M on cpu (ctranslate2 float32)"


def test_only_the_last_n_jobs_count(tmp_path):
    clock = Clock()
    store = Store(tmp_path / "j.db", clock=clock)
    plant(store, clock, CPU, {"preprocess": 50, "inference": 50, "postprocess": 0, "upload": 0},
          UNITS)
    for _ in range(2):
        plant(store, clock, CPU, {"preprocess": 1, "inference": 97, "postprocess": 1,
                                  "upload": 1}, UNITS)
    assert stage_history(store, CPU, last_n=2).weights["inference"] == pytest.approx(0.97)


def test_seconds_per_input_byte_is_the_median_over_jobs(tmp_path):
    clock = Clock()
    store = Store(tmp_path / "j.db", clock=clock)
    for inference in (90, 190, 290):
        plant(store, clock, CPU, {"preprocess": 5, "inference": inference, "postprocess": 3,
                                  "upload": 2}, UNITS)
    # totals 100, 200, 300 s over 10,000 input bytes: median 0.02 s per byte
    assert stage_history(store, CPU).seconds_per_byte == pytest.approx(0.02)
