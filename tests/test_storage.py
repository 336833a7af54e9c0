"""Storage URLs without a server: the grammar, redaction, the error table
(a test per row), and memory:// (fsspec's in-process store) as input and
destination, where the sink writes a temporary key then moves it."""

from __future__ import annotations

import errno
from importlib.util import find_spec

import fsspec
import pytest

from pipeline import objects, service
from pipeline.config import RunSettings
from pipeline.documents.inputs import scan_input
from pipeline.errors import ErrorClass, InvalidInput
from pipeline.objects.errors import (CODE_CLASSES, ERRNO_CLASSES, MESSAGE_CLASSES,
                                     STATUS_ATTRIBUTES, STATUS_CLASSES, TYPE_CLASSES,
                                     class_of_storage_error)
from pipeline.sinks import DeliveryError, DeliveryOptions, redact_url, sink_for
from pipeline.store import Store
from tests.conftest import run_cli
from tests.fakes import NO_WAITS, FakeTranslator

DOC = b"# Title\n\nThe first sentence. The second one.\n"


@pytest.fixture
def memory():
    fs = fsspec.filesystem("memory")
    fs.store.clear()
    fs.pseudo_dirs.clear()
    fs.pseudo_dirs.append("")
    yield fs
    fs.store.clear()


def runtime() -> service.Runtime:
    translator = FakeTranslator()
    return service.Runtime(settings=RunSettings(device="cpu"), policy=NO_WAITS,
                           translators=lambda params: translator)


def opts(trained_model, **kw) -> service.JobOptions:
    return service.JobOptions(src="eng_Latn", tgt="fra_Latn", model=str(trained_model), **kw)


def test_an_object_goes_to_a_prefix_through_a_temporary_key(memory, tmp_path, trained_model):
    memory.pipe("/b/docs/a.md", DOC)
    local = tmp_path / "a.md"
    local.write_bytes(DOC)
    store = Store(tmp_path / "jobs.db")
    service.translate_or_resume(store, scan_input(local), opts(trained_model,
                                output=str(tmp_path / "out.md")), runtime())
    job = service.translate_or_resume(store, scan_input("memory://b/docs/a.md"),
                                      opts(trained_model, to="memory://b/out/"), runtime()).job
    assert job.state == "SUCCEEDED"
    assert (job.input_path, job.output_path) == ("memory://b/docs/a.md",
                                                  "memory://b/out/a.fra_Latn.md")
    assert memory.cat("/b/out/a.fra_Latn.md") == (tmp_path / "out.md").read_bytes()
    assert memory.find("/b/out") == ["/b/out/a.fra_Latn.md"]  # the .part key was moved
    again = service.translate_or_resume(store, scan_input("memory://b/docs/a.md"),
                                        opts(trained_model, to="memory://b/out/"), runtime())
    assert again.note == "already translated; nothing to do"


def test_the_default_output_is_beside_the_object(memory, tmp_path, trained_model):
    memory.pipe("/b/docs/a.md", DOC)
    job = service.translate_or_resume(Store(tmp_path / "jobs.db"),
                                      scan_input("memory://b/docs/a.md"), opts(trained_model),
                                      runtime()).job
    assert job.output_path == "memory://b/docs/a.fra_Latn.md"
    assert memory.exists("/b/docs/a.fra_Latn.md")


def test_an_object_changed_after_submit_is_refused_on_resume(memory, tmp_path, trained_model):
    memory.pipe("/b/docs/a.md", DOC)
    store = Store(tmp_path / "jobs.db")
    [submitted] = service.submit_paths(store, ["memory://b/docs/a.md"],
                                       opts(trained_model, to="memory://b/out/"))
    memory.pipe("/b/docs/a.md", DOC.replace(b"first", b"other"))
    service.run_worker(store, runtime(), idle_exit_s=0, poll_s=0.01)
    job = store.job(submitted.job.id)
    assert job.state == "FAILED" and job.error_class == "invalid_input"
    assert "changed since job" in job.error_message and "memory://b/docs/a.md" in (
        job.error_message)
    assert not memory.exists("/b/out/a.fra_Latn.md")


def test_a_different_object_at_the_target_is_not_replaced(memory, tmp_path, trained_model):
    memory.pipe("/b/docs/a.md", DOC)
    memory.pipe("/b/out/a.fra_Latn.md", b"someone else's\n")
    with pytest.raises(InvalidInput, match="already exists; pass --overwrite"):
        service.translate_or_resume(Store(tmp_path / "jobs.db"),
                                    scan_input("memory://b/docs/a.md"),
                                    opts(trained_model, to="memory://b/out/"), runtime())
    assert memory.cat("/b/out/a.fra_Latn.md") == b"someone else's\n"


def test_a_prefix_is_listed_with_the_glob_and_keeps_its_paths(memory, tmp_path, trained_model):
    for name in ("a.md", "sub/b.md", "c.txt"):
        memory.pipe(f"/b/docs/{name}", DOC)
    results = service.submit_paths(Store(tmp_path / "jobs.db"), ["memory://b/docs/"],
                                   opts(trained_model, to="memory://b/out/"), glob="*.md")
    assert [r.job.output_path for r in results] == ["memory://b/out/a.fra_Latn.md",
                                                    "memory://b/out/sub/b.fra_Latn.md"]
    [empty] = service.submit_paths(Store(tmp_path / "jobs.db"), ["memory://b/none/"],
                                   opts(trained_model), glob="*.md")
    assert empty.error == "no object matches '*.md' under this prefix"


@pytest.mark.parametrize("url, message", [
    ("s3://AKIAXX:secret@bucket/a.md", "contains a user name or password"),
    ("s3://bucket/a.md?versionId=3", "takes no query or fragment"),
    ("s3://", "names no bucket or path"),
])
def test_a_storage_url_with_credentials_or_a_query_is_refused(url, message):
    with pytest.raises(InvalidInput, match=message) as info:
        objects.check_url(url, "--to")
    assert "secret" not in str(info.value)


@pytest.mark.skipif(find_spec("gcsfs") is not None, reason="gcsfs is installed here")
def test_a_url_whose_implementation_is_missing_names_the_extra(tmp_path):
    proc = run_cli("translate", "gs://bucket/a.md", "--src", "eng_Latn", "--tgt", "fra_Latn",
                   db=tmp_path / "jobs.db", check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "nllb-pipeline: error: gs:// URLs need their storage library: pip install "
        "'nllb-pipeline[gcs]' (it installs gcsfs)"]


SIGNED = ("https://b.s3.amazonaws.com/out/a.md?X-Amz-Algorithm=AWS4-HMAC-SHA256"
          "&X-Amz-Credential=AKIAEXAMPLE%2F20260101%2Fus-east-1%2Fs3%2Faws4_request"
          "&X-Amz-Date=20260101T000000Z&X-Amz-Expires=600&X-Amz-SignedHeaders=host"
          "&X-Amz-Security-Token=tok&X-Amz-Signature=abcdef0123")


@pytest.mark.parametrize("url, kept, gone", [
    (SIGNED, ["X-Amz-Expires=600", "X-Amz-Date="], ["abcdef0123", "AKIAEXAMPLE", "tok"]),
    ("https://acct.blob.core.windows.net/c/a.md?sv=2022&se=2026&sp=w&sig=c2lnbmF0dXJl",
     ["sp=w"], ["c2lnbmF0dXJl"]),
    ("https://storage.googleapis.com/b/a.md?GoogleAccessId=svc%40x&Expires=1&Signature=Z2c",
     [], ["svc", "Z2c"]),
    ("https://x.example/up?token=s3cr3t&name=a", ["name=a"], ["s3cr3t"]),
])
def test_a_presigned_urls_signature_is_redacted(url, kept, gone):
    shown = redact_url(url)
    assert "REDACTED" in shown
    assert all(k in shown for k in kept) and not any(g in shown for g in gone)


def test_a_signature_is_not_part_of_the_job_key_and_must_be_given_again(tmp_path,
                                                                        trained_model):
    doc = tmp_path / "a.md"
    doc.write_bytes(DOC)
    source = scan_input(doc)
    first = service.job_params(opts(trained_model, to=SIGNED), source)
    second = service.job_params(opts(trained_model, to=SIGNED.replace("abcdef", "999999")),
                                source)
    assert first == second and "abcdef0123" not in first.canonical_json()
    with pytest.raises(DeliveryError, match="--signed-url"):
        sink_for(first, DeliveryOptions())
    assert sink_for(first, DeliveryOptions(signed_urls=(SIGNED,))).url == SIGNED


# -- the error table, a test per row ----------------------------------------------------


def client_error(code: str, status: int):
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": "m"},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject")


@pytest.mark.skipif(find_spec("botocore") is None, reason="needs botocore (s3fs)")
@pytest.mark.parametrize("code", sorted(CODE_CLASSES))
def test_each_error_code_is_classed(code):
    from s3fs.errors import translate_boto_error

    raw = client_error(code, 400)
    assert class_of_storage_error(raw) is CODE_CLASSES[code]
    assert class_of_storage_error(translate_boto_error(raw)) is CODE_CLASSES[code]


@pytest.mark.skipif(find_spec("botocore") is None, reason="needs botocore (s3fs)")
@pytest.mark.parametrize("status, expected", [
    *STATUS_CLASSES.items(), (400, ErrorClass.INVALID_INPUT), (500, ErrorClass.SERVER),
    (503, ErrorClass.SERVER), (504, ErrorClass.SERVER)])
def test_each_status_without_a_known_code_is_classed(status, expected):
    assert class_of_storage_error(client_error("Unnamed", status)) is expected


@pytest.mark.parametrize("name, expected", TYPE_CLASSES)
def test_each_exception_type_is_classed(name, expected):
    base = {"PermissionError": PermissionError, "FileNotFoundError": FileNotFoundError,
            "IsADirectoryError": IsADirectoryError, "NotADirectoryError": NotADirectoryError,
            "TimeoutError": TimeoutError, "ConnectionError": ConnectionError}.get(name, Exception)
    exc = foreign(name)("x") if base is Exception else base("x")
    assert class_of_storage_error(exc) is expected


@pytest.mark.parametrize("name, status, code", STATUS_ATTRIBUTES)
def test_each_status_attribute_is_read(name, status, code):
    exc = foreign(name)("x")
    setattr(exc, status, 429)
    assert class_of_storage_error(exc) is ErrorClass.RATE_LIMITED
    if code:
        setattr(exc, code, "AccessDenied")
        assert class_of_storage_error(exc) is ErrorClass.AUTH


@pytest.mark.parametrize("start, expected", MESSAGE_CLASSES)
def test_each_message_pattern_is_classed_only_on_a_bare_oserror(start, expected):
    assert class_of_storage_error(OSError(start + "b/a.md")) is expected
    assert class_of_storage_error(ValueError(start + "b/a.md")) is ErrorClass.INTERNAL


def foreign(qualified: str, *bases: type, **attributes) -> type:
    """A stand-in for a class of a library that is not installed here: the
    same module, name and hierarchy (the table matches on those)."""
    module, _, name = qualified.rpartition(".")
    return type(name, bases or (Exception,), {"__module__": module or __name__,
                                              "__qualname__": name, **attributes})


# gcsfs (gcsfs/retry.py): HttpError(error_response) keeps the JSON error's code
# (an int, or its text) and message; validate_response raises FileNotFoundError
# for a 404, OSError("Forbidden: ...") for a 403, requests' ProxyError for a 502.
def _http_error_init(self, error_response=None):
    self.code = (error_response or {}).get("code")
    self.message = (error_response or {}).get("message", "")
    Exception.__init__(self, self.message)


HttpError = foreign("gcsfs.retry.HttpError", __init__=_http_error_init)
RequestException = foreign("requests.exceptions.RequestException", OSError)
RequestsConnectionError = foreign("requests.exceptions.ConnectionError", RequestException)
ProxyError = foreign("requests.exceptions.ProxyError", RequestsConnectionError)
# google-api-core: each class carries its HTTP status as the class attribute ``code``.
GoogleAPIError = foreign("google.api_core.exceptions.GoogleAPIError")
GoogleAPICallError = foreign("google.api_core.exceptions.GoogleAPICallError", GoogleAPIError,
                             code=None)
ApiClientError = foreign("google.api_core.exceptions.ClientError", GoogleAPICallError)
ApiServerError = foreign("google.api_core.exceptions.ServerError", GoogleAPICallError)
API = {name: foreign(f"google.api_core.exceptions.{name}", base, code=code) for name, base, code in (
    ("TooManyRequests", ApiClientError, 429), ("Forbidden", ApiClientError, 403),
    ("NotFound", ApiClientError, 404), ("Unauthorized", ApiClientError, 401),
    ("InternalServerError", ApiServerError, 500), ("ServiceUnavailable", ApiServerError, 503),
    ("GatewayTimeout", ApiServerError, 504))}
GoogleAuthError = foreign("google.auth.exceptions.GoogleAuthError")
AUTH_ERRORS = {name: foreign(f"google.auth.exceptions.{name}", GoogleAuthError)
               for name in ("RefreshError", "DefaultCredentialsError", "TransportError")}


@pytest.mark.parametrize("exc, expected", [
    (HttpError({"code": 429, "message": "rate"}), ErrorClass.RATE_LIMITED),
    (HttpError({"code": 500, "message": "x"}), ErrorClass.SERVER),
    (HttpError({"code": 503, "message": "x"}), ErrorClass.SERVER),
    (HttpError({"code": "504", "message": "x"}), ErrorClass.SERVER),  # the code as text
    (HttpError({"code": 401, "message": "Invalid Credentials"}), ErrorClass.AUTH),
    (HttpError({"code": 400, "message": "bad"}), ErrorClass.INVALID_INPUT),
    (OSError("Forbidden: b/docs/a.md\nno storage.objects.get access"), ErrorClass.AUTH),
    (FileNotFoundError("b/docs/a.md"), ErrorClass.INVALID_INPUT),  # gcsfs's 404
    (ProxyError(), ErrorClass.NETWORK),  # gcsfs's 502
    (API["TooManyRequests"]("quota"), ErrorClass.RATE_LIMITED),
    (API["InternalServerError"]("x"), ErrorClass.SERVER),
    (API["ServiceUnavailable"]("x"), ErrorClass.SERVER),
    (API["GatewayTimeout"]("x"), ErrorClass.SERVER),
    (API["Forbidden"]("x"), ErrorClass.AUTH),
    (API["Unauthorized"]("x"), ErrorClass.AUTH),
    (API["NotFound"]("x"), ErrorClass.INVALID_INPUT),
    (AUTH_ERRORS["RefreshError"]("x"), ErrorClass.AUTH),
    (AUTH_ERRORS["DefaultCredentialsError"]("x"), ErrorClass.AUTH),
    (AUTH_ERRORS["TransportError"]("x"), ErrorClass.NETWORK),
], ids=lambda v: f"{type(v).__name__}:{getattr(v, 'code', '')}" if isinstance(v, Exception)
    else v.value)
def test_each_gcs_pattern_is_classed(exc, expected):
    assert class_of_storage_error(exc) is expected
    if getattr(exc, "code", None):  # an answer is found along the chain too
        assert class_of_storage_error(_raised_from(exc)) is expected


def _raised_from(exc: Exception) -> Exception:
    try:
        try:
            raise exc
        except Exception as inner:
            raise RuntimeError("wrapped by the implementation") from inner
    except RuntimeError as outer:
        return outer


# azure-core (azure/core/exceptions.py), as adlfs lets them through: a status and
# reason from the response; azure-storage-blob adds the x-ms-error-code as error_code.
def _http_response_error_init(self, message=None, response=None, **kwargs):
    self.status_code = getattr(response, "status_code", None)
    self.reason = getattr(response, "reason", None)
    self.response = response
    Exception.__init__(self, message or f"Operation returned an invalid status {self.reason!r}")


AZ = "azure.core.exceptions."
AzureError = foreign(AZ + "AzureError")
ServiceRequestError = foreign(AZ + "ServiceRequestError", AzureError)
ServiceResponseError = foreign(AZ + "ServiceResponseError", AzureError)
ServiceRequestTimeoutError = foreign(AZ + "ServiceRequestTimeoutError", ServiceRequestError)
ServiceResponseTimeoutError = foreign(AZ + "ServiceResponseTimeoutError", ServiceResponseError)
HttpResponseError = foreign(AZ + "HttpResponseError", AzureError,
                            __init__=_http_response_error_init)
ResourceNotFoundError = foreign(AZ + "ResourceNotFoundError", HttpResponseError)
ClientAuthenticationError = foreign(AZ + "ClientAuthenticationError", HttpResponseError)
CredentialUnavailableError = foreign("azure.identity._exceptions.CredentialUnavailableError",
                                     ClientAuthenticationError)


def answered(cls, status: int | None, error_code: str | None = None):
    from types import SimpleNamespace

    exc = cls(response=SimpleNamespace(status_code=status, reason="r") if status else None)
    if error_code:
        exc.error_code = error_code
    return exc


@pytest.mark.parametrize("exc, expected", [
    (ServiceRequestError("Connection refused"), ErrorClass.NETWORK),
    (ServiceResponseError("Connection aborted"), ErrorClass.NETWORK),
    (ServiceRequestTimeoutError("timed out"), ErrorClass.TIMEOUT),
    (ServiceResponseTimeoutError("read timed out"), ErrorClass.TIMEOUT),
    (answered(HttpResponseError, 429), ErrorClass.RATE_LIMITED),
    (answered(HttpResponseError, 500), ErrorClass.SERVER),
    (answered(HttpResponseError, 503), ErrorClass.SERVER),
    (answered(HttpResponseError, 503, "ServerBusy"), ErrorClass.RATE_LIMITED),
    (answered(HttpResponseError, 500, "OperationTimedOut"), ErrorClass.TIMEOUT),
    (answered(HttpResponseError, 403, "AuthorizationPermissionMismatch"), ErrorClass.AUTH),
    (answered(ResourceNotFoundError, 404, "ContainerNotFound"), ErrorClass.INVALID_INPUT),
    (answered(ResourceNotFoundError, 404), ErrorClass.INVALID_INPUT),
    (answered(ResourceNotFoundError, None), ErrorClass.INVALID_INPUT),  # no answer: by type
    (answered(ClientAuthenticationError, 403, "AuthenticationFailed"), ErrorClass.AUTH),
    (answered(ClientAuthenticationError, None), ErrorClass.AUTH),
    (CredentialUnavailableError("no credential in the chain"), ErrorClass.AUTH),
], ids=lambda v: f"{type(v).__name__}:{getattr(v, 'status_code', '')}:"
                 f"{getattr(v, 'error_code', '')}" if isinstance(v, Exception) else v.value)
def test_each_azure_pattern_is_classed(exc, expected):
    assert class_of_storage_error(exc) is expected
    if getattr(exc, "status_code", None):  # an answer is found along the chain too
        assert class_of_storage_error(_raised_from(exc)) is expected


def test_a_transient_foreign_error_is_retryable_and_a_missing_one_is_invalid_input():
    from pipeline.errors import StorageError
    from pipeline.objects.errors import storage_error

    busy = storage_error(answered(HttpResponseError, 503, "ServerBusy"), "cannot read az://c/a")
    assert isinstance(busy, StorageError) and busy.error_class.retryable
    assert str(busy) == "cannot read az://c/a: ServerBusy 503"
    gone = storage_error(API["NotFound"]("No such object"), "cannot read gs://b/a")
    assert isinstance(gone, InvalidInput) and str(gone) == "cannot read gs://b/a: HTTP 404"


@pytest.mark.parametrize("number", sorted(ERRNO_CLASSES))
def test_each_errno_is_classed(number):
    assert class_of_storage_error(OSError(number, "x")) is ERRNO_CLASSES[number]


def test_transient_classes_retry_and_denied_or_missing_do_not():
    assert class_of_storage_error(ConnectionResetError(errno.ECONNRESET, "reset")).retryable
    assert class_of_storage_error(TimeoutError("t")).retryable
    assert not class_of_storage_error(PermissionError("denied")).retryable
    assert not class_of_storage_error(FileNotFoundError("NoSuchBucket")).retryable


def test_a_storage_section_that_is_not_a_table_per_protocol_is_refused(tmp_path):
    from pipeline import settings

    config = tmp_path / "config.toml"
    config.write_text('[storage]\ns3 = "http://127.0.0.1:9000"\n')
    with pytest.raises(InvalidInput, match=r"\[storage\] holds one table per protocol"):
        settings.load(settings.Flags(config=config))
    config.write_text('[storage.s3]\nendpoint_url = "http://127.0.0.1:9000"\n')
    loaded = settings.load(settings.Flags(config=config))
    assert loaded.delivery.storage == {"s3": {"endpoint_url": "http://127.0.0.1:9000"}}
    assert "9000" not in repr(loaded.delivery)
