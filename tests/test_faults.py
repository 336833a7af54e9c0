"""Injected faults are the exceptions each backend's library really raises,
so they take the same path through classification as real ones."""

from __future__ import annotations

import pytest

from models.errors import classify_ct2, classify_torch
from models.faults import FaultInjectingTranslator, FaultSpec, simulated
from pipeline.errors import ErrorClass, InvalidInput
from pipeline.translator import Decoding, Translation, TranslatorInfo

EXPECTED = {"oom": ErrorClass.OOM, "transient": ErrorClass.DEVICE_TRANSIENT,
            "device_fatal": ErrorClass.DEVICE_FATAL}


@pytest.mark.parametrize("kind", list(EXPECTED))
def test_each_simulated_fault_classifies_as_its_kind_on_each_backend(kind):
    import torch

    assert classify_torch(simulated("hf", kind)) is EXPECTED[kind]
    assert classify_ct2(simulated("ctranslate2", kind)) is EXPECTED[kind]
    assert str(simulated("ctranslate2", kind)).startswith("CUDA failed with error ")
    assert isinstance(simulated("hf", "oom"), torch.OutOfMemoryError)


def test_the_spec_parses_and_prints():
    spec = FaultSpec.parse("oom=0.2, device_fatal=0.5,seed=7")
    assert (spec.oom, spec.transient, spec.device_fatal, spec.seed) == (0.2, 0.0, 0.5, 7)
    assert str(spec) == "oom=0.2,transient=0.0,device_fatal=0.5,seed=7"
    assert str(FaultSpec.parse("oom=0.1")) == "oom=0.1,transient=0.0,seed=0"
    for bad in ("fatal=0.1", "device_fatal=2", "oom"):
        with pytest.raises(InvalidInput, match="bad fault spec"):
            FaultSpec.parse(bad)


class _Echo:
    """A translator that works, on whichever device it is put."""

    def __init__(self, device="cuda:0"):
        self.device = device

    def describe(self):
        return TranslatorInfo("ctranslate2", "m", self.device, "int8", 2048, 1024, 1022)

    def translate_batch(self, texts, src_lang, tgt_lang, decoding):
        return [Translation(t, 1, True) for t in texts]

    def on_device(self, device):
        return _Echo(device)


def test_a_broken_device_stays_broken_and_the_fallback_device_works():
    faulty = FaultInjectingTranslator(_Echo(), FaultSpec(device_fatal=1.0))
    for _ in range(3):  # a poisoned context: every later call fails too
        with pytest.raises(RuntimeError, match="illegal memory access"):
            faulty.translate_batch(["a"], "eng_Latn", "fra_Latn", Decoding())
    fallback = faulty.on_device("cpu")
    assert fallback.describe().device == "cpu"
    assert [t.text for t in fallback.translate_batch(["a", "b"], "eng_Latn", "fra_Latn",
                                                     Decoding())] == ["a", "b"]
    assert fallback.injected is faulty.injected and faulty.injected["device_fatal"] == 3
