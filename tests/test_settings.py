"""pipeline.settings: defaults, then the config file, then the environment,
then flags, for the CLI, serve's workers and library callers alike."""

from __future__ import annotations

import pytest

from pipeline import config
from pipeline.cli import build_parser
from pipeline.errors import ErrorClass, InvalidInput
from pipeline.settings import Flags, load


def test_each_layer_overrides_the_one_under_it_for_a_library_caller(tmp_path):
    conf = tmp_path / "config.toml"
    conf.write_text('[run]\ndevice = "cpu"\nthreads = 2\nbackend = "hf"\n'
                    "[retry]\nchunk_attempts = 5\nserver = 7\n")
    environ = {"NLLB_PIPELINE_CONFIG": str(conf)}
    s = load(Flags(), environ)
    assert (s.run.device, s.run.threads, s.run.backend, s.run.dtype) == ("cpu", 2, "hf", "auto")
    assert (s.retry.chunk_attempts, s.retry.limit(ErrorClass.SERVER, 3)) == (5, 7)
    assert s.config == conf and s.faults is None
    environ |= {"NLLB_PIPELINE_BACKEND": "ctranslate2", "NLLB_PIPELINE_RETRY": "chunk_attempts=4"}
    s = load(Flags(), environ)
    assert (s.run.backend, s.retry.chunk_attempts) == ("ctranslate2", 4)
    s = load(Flags(backend="hf", threads=0, retry="chunk_attempts=3", http_timeout=5.0), environ)
    assert (s.run.backend, s.run.threads, s.run.device) == ("hf", 0, "cpu")
    assert (s.retry.chunk_attempts, s.delivery.timeout_s) == (3, 5.0)
    assert load(Flags(), {}).delivery.timeout_s == 30.0


def test_headers_are_expanded_from_the_environment_given(tmp_path):
    environ = {"NLLB_PIPELINE_CONFIG": str(tmp_path / "none.toml"), "TOKEN": "s3cret"}
    s = load(Flags(headers=("Authorization: Bearer $TOKEN",), overwrite=True), environ)
    assert s.delivery.headers == (("Authorization", "Bearer s3cret"),)
    assert s.delivery.overwrite and "s3cret" not in repr(s)


def test_a_serve_worker_gets_the_flags_serve_was_given():
    parser = build_parser()
    flags = Flags.from_args(parser.parse_args([
        "serve", "--device", "cpu", "--dtype", "float32", "--batch-tokens", "256",
        "--threads", "1", "--retry", "chunk_attempts=2", "--inject-faults", "oom=0.1",
        "--header", "X-Key: $SECRET", "--http-timeout", "7", "--overwrite"]))
    assert flags.dtype == "float32" and flags.headers == ("X-Key: $SECRET",)
    worker = Flags.from_args(parser.parse_args(["worker", *flags.argv()]))
    assert worker == flags
    assert Flags.from_args(parser.parse_args(["worker"])) == Flags()
    assert Flags().argv() == []


@pytest.mark.parametrize("flags, message", [
    (Flags(dtype="int4"), "unknown dtype 'int4'"),
    (Flags(backend="hf", dtype="int8"), "--dtype int8 is a CTranslate2 compute type; the "
                                        "transformers backend runs float32, float16, bfloat16"),
    (Flags(device="tpu"), "unknown device 'tpu'"),
    (Flags(inject_faults="oom=2"), "--inject-faults"),
    (Flags(config="/nonexistent/config.toml"), "config file not found"),
])
def test_bad_settings_are_refused_naming_where_they_came_from(flags, message, tmp_path):
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(")):
        load(flags, {"NLLB_PIPELINE_CONFIG": str(tmp_path / "none.toml")})


def test_a_compute_type_in_the_config_file_is_checked_against_the_backends(tmp_path):
    conf = tmp_path / "config.toml"
    conf.write_text('[run]\ndtype = "int3"\n')
    with pytest.raises(InvalidInput, match=rf"config file {conf}: \[run\] dtype: unknown dtype"):
        load(Flags(config=conf), {})
    conf.write_text('[run]\nbackend = "hf"\ndtype = "int8_float16"\n')
    with pytest.raises(InvalidInput, match="transformers backend runs"):
        load(Flags(config=conf), {})


def test_every_backend_declares_its_compute_types_without_a_model_library():
    from models.backends import COMPUTE_TYPES

    assert set(COMPUTE_TYPES) == set(config.BACKENDS) - {"auto"}
    assert all(COMPUTE_TYPES.values())


@pytest.mark.slow
def test_the_transformers_row_names_torch_dtypes():
    torch = pytest.importorskip("torch")
    from models.backends import COMPUTE_TYPES

    assert all(isinstance(getattr(torch, name, None), torch.dtype)
               for name in COMPUTE_TYPES["hf"])
