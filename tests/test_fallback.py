"""--fallback-device: when the GPU fails in a way retrying on it cannot fix,
the run loads the model on the fallback device and goes on there, recorded
on the batches and shown by ``show``."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from models.ct2 import Ct2Translator
from models.faults import FaultInjectingTranslator, FaultSpec, simulated
from pipeline.cli import main
from pipeline.config import JobParams, RunSettings
from pipeline.errors import JobFailed
from pipeline.documents.inputs import read_input
from pipeline.jobs import submit
from pipeline.runner import run_job
from pipeline.samples import generate_text
from pipeline.store import Store
from pipeline.translator import TranslatorInfo

SETTINGS = RunSettings(device="cpu", batch_tokens=300, fallback_device="cpu")


class PretendGpu:
    """The real CPU translator, labelled cuda:0: a stand-in for a GPU on a
    machine without one. Its fallback device is the real thing."""

    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def describe(self) -> TranslatorInfo:
        return replace(self.inner.describe(), device="cuda:0")

    def on_device(self, device):
        return self.inner.on_device(device)


class OomOnOneSentence(PretendGpu):
    """Runs out of memory whenever it gets a single sentence (CTranslate2's
    real CUDA message), as a sentence too long for the GPU does."""

    def translate_batch(self, texts, src_lang, tgt_lang, decoding):
        if len(texts) == 1:
            raise simulated("ctranslate2", "oom")
        return self.inner.translate_batch(texts, src_lang, tgt_lang, decoding)


@pytest.fixture(scope="module")
def ct2(tiny_model, tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("fallback-cache")))
    translator = Ct2Translator(str(tiny_model), RunSettings(device="cpu"))
    translator.load()
    yield translator
    mp.undo()


def job(tmp_path, model, name):
    src = tmp_path / "doc.txt"
    src.write_text(generate_text(30, seed=11))
    # The repair ladder off: on random weights it replaces every sentence by
    # pieces, and these tests count what each device committed.
    params = JobParams(model=str(model), src_lang="eng_Latn", tgt_lang="fra_Latn", fmt="text",
                       output=str(tmp_path / f"{name}.txt"), quality="off")
    assert params.beams == 4  # the default users run
    store = Store(tmp_path / f"{name}.db")
    return store, submit(store, params, read_input(src))[0]


def test_a_fatal_device_error_moves_the_run_to_the_fallback_device(tmp_path, tiny_model, ct2):
    store, clean = job(tmp_path, tiny_model, "clean")
    run_job(store, clean.id, ct2, settings=SETTINGS)
    store, broken = job(tmp_path, tiny_model, "broken")
    # The "GPU" breaks after a few batches, and stays broken.
    faulty = FaultInjectingTranslator(PretendGpu(ct2), FaultSpec(device_fatal=0.1, seed=2))
    final = run_job(store, broken.id, faulty, settings=SETTINGS)
    assert final.state == "SUCCEEDED"
    # The call that broke the device, and the one queued behind it in the
    # local window, which fails on the broken device too and is sent again
    # on the fallback without counting as an attempt.
    assert faulty.injected["device_fatal"] in (1, 2)
    assert (tmp_path / "broken.txt").read_bytes() == (tmp_path / "clean.txt").read_bytes()
    batches = sorted((b for b in store.batches(broken.id) if b.state == "committed"),
                     key=lambda b: b.committed_at)
    devices = [b.device for b in batches]
    first_cpu = devices.index("cpu")
    assert first_cpu >= 1 and devices == ["cuda:0"] * first_cpu + ["cpu"] * (
        len(devices) - first_cpu)
    assert {(b.backend, b.compute_type) for b in batches} == {("ctranslate2", "int8")}
    (switch,) = [a for a in store.attempts(broken.id) if a.decision == "fallback"]
    assert switch.error_class == "device_fatal" and switch.batch_id == batches[first_cpu].id
    assert "illegal memory access" in switch.message
    assert switch.message.endswith("on cuda:0; going on on cpu (ctranslate2 int8)")
    # Each part of the inference is timed on the profile it ran on.
    runs = [(r.device, r.units_done > 0) for r in store.stage_runs(broken.id)
            if r.stage == "inference"]
    assert runs == [("cuda:0", True), ("cpu", True)]
    assert store.inference_profile(broken.id)[1:] == ("ctranslate2", "cpu", "int8")


def test_without_a_fallback_device_the_job_fails_and_says_how_to_go_on(tmp_path, tiny_model,
                                                                       ct2):
    store, broken = job(tmp_path, tiny_model, "broken")
    faulty = FaultInjectingTranslator(PretendGpu(ct2), FaultSpec(device_fatal=1.0))
    with pytest.raises(JobFailed, match="--fallback-device cpu"):
        run_job(store, broken.id, faulty, settings=replace(SETTINGS, fallback_device=""))
    assert store.job(broken.id).error_class == "device_fatal"


def test_oom_on_a_single_sentence_moves_to_the_fallback_device(tmp_path, tiny_model, ct2):
    store, clean = job(tmp_path, tiny_model, "clean")
    run_job(store, clean.id, ct2, settings=SETTINGS)
    store, tight = job(tmp_path, tiny_model, "tight")
    final = run_job(store, tight.id, OomOnOneSentence(ct2), settings=SETTINGS)
    assert final.state == "SUCCEEDED"
    assert (tmp_path / "tight.txt").read_bytes() == (tmp_path / "clean.txt").read_bytes()
    (switch,) = [a for a in store.attempts(tight.id) if a.decision == "fallback"]
    assert switch.error_class == "oom" and "CUDA failed with error out of memory" in switch.message
    committed = [b for b in store.batches(tight.id) if b.state == "committed"]
    single = [b for b in committed if len(b.chunk_idxs) == 1]
    assert single and all(b.device == "cpu" for b in committed[committed.index(single[0]):])
    # An OOM on the device the fallback names is an OOM: the usual retries, no switch.
    store, on_cpu = job(tmp_path, tiny_model, "on-cpu")

    class OomOnCpu(OomOnOneSentence):
        describe = Ct2Translator.describe.__get__(ct2)

    final = run_job(store, on_cpu.id, OomOnCpu(ct2), settings=SETTINGS,
                    sleep=lambda s: None)
    assert not [a for a in store.attempts(on_cpu.id) if a.decision == "fallback"]


def test_the_command_line_goes_on_on_the_fallback_device_and_show_says_so(tmp_path, capsys,
                                                                          tiny_model):
    src = tmp_path / "doc.txt"
    src.write_text(generate_text(20, seed=4))
    db = str(tmp_path / "jobs.db")
    common = ["--db", db, "translate", str(src), "--src", "eng_Latn", "--tgt", "fra_Latn",
              "--model", str(tiny_model), "--device", "cpu", "--batch-tokens", "300", "--json",
              "--inject-faults", "device_fatal=1,seed=1"]
    assert main(common) == 1  # without a fallback device: FAILED, as before
    assert "device is in a broken state" in capsys.readouterr().err
    assert main([*common, "--fallback-device", "cpu"]) == 0, capsys.readouterr().err
    result = json.loads(capsys.readouterr().out)
    assert result["state"] == "SUCCEEDED"
    assert main(["--db", db, "show", result["job"]]) == 0
    shown = capsys.readouterr().out
    assert "device switch" in shown and "[device_fatal]" in shown
    assert "going on on cpu (ctranslate2 int8)" in shown
    assert "translated by ctranslate2 on cpu (int8):" in shown
