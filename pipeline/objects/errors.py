"""Storage failures as error classes: the one place that knows what fsspec
implementations raise.

Read top to bottom, first match wins:

1. ``CODE_CLASSES``: the error code the server answered: botocore's
   ``response["Error"]["Code"]`` (an S3-compatible server, through s3fs,
   which re-raises a ``ClientError`` as an ``OSError`` whose cause it is),
   or an Azure Storage ``error_code`` (its ``x-ms-error-code`` header,
   which azure-storage-blob sets on the ``HttpResponseError`` adlfs lets
   through). Found on the exception or the exceptions it was raised from.
   A structured field, not message text.
2. ``STATUS_CLASSES`` / the hundred: the HTTP status of that answer, from
   botocore's response, or the attribute ``STATUS_ATTRIBUTES`` names for
   the exception classes of gcsfs (``HttpError.code``), google-api-core
   (``GoogleAPICallError.code``), azure-core (``HttpResponseError.status_code``)
   and aiohttp (``ClientResponseError.status``).
3. ``TYPE_CLASSES``: the exception's type, by name along its class
   hierarchy (``socket.timeout``, aiohttp's and botocore's connection
   errors), or by module and name where a bare name would be ambiguous
   (``azure.core.exceptions.ServiceRequestError``), so that no
   implementation has to be importable to be classed.
4. An ``OSError``'s errno (s3fs gives EBUSY for SlowDown, EIO for a server
   error it does not name).
5. ``MESSAGE_CLASSES``: the few failures an implementation raises as a
   bare ``OSError`` with only a message (gcsfs's 403 is ``OSError("Forbidden:
   ...")``), then INTERNAL.

A test walks every row. Messages name the URL and the code, never a
credential: none is ever in a URL we hold.
"""

from __future__ import annotations

import errno
from collections.abc import Mapping
from types import MappingProxyType

from pipeline.errors import ErrorClass, InvalidInput, PipelineError, StorageError

CODE_CLASSES: Mapping[str, ErrorClass] = MappingProxyType({
    "SlowDown": ErrorClass.RATE_LIMITED,  # S3: reduce your request rate
    "Throttling": ErrorClass.RATE_LIMITED,
    "ThrottlingException": ErrorClass.RATE_LIMITED,
    "RequestLimitExceeded": ErrorClass.RATE_LIMITED,
    "TooManyRequestsException": ErrorClass.RATE_LIMITED,
    "RequestThrottled": ErrorClass.RATE_LIMITED,
    "OperationAborted": ErrorClass.RATE_LIMITED,  # a conflicting operation is in progress
    "ServiceUnavailable": ErrorClass.SERVER,
    "InternalError": ErrorClass.SERVER,
    "RequestTimeout": ErrorClass.TIMEOUT,  # the server gave up waiting for our body
    "RequestTimeTooSkewed": ErrorClass.AUTH,
    "AccessDenied": ErrorClass.AUTH,
    "AllAccessDisabled": ErrorClass.AUTH,
    "InvalidAccessKeyId": ErrorClass.AUTH,
    "SignatureDoesNotMatch": ErrorClass.AUTH,
    "ExpiredToken": ErrorClass.AUTH,
    "InvalidToken": ErrorClass.AUTH,
    "AccountProblem": ErrorClass.AUTH,
    "NoSuchBucket": ErrorClass.INVALID_INPUT,
    "NoSuchKey": ErrorClass.INVALID_INPUT,
    "InvalidBucketName": ErrorClass.INVALID_INPUT,
    "PermanentRedirect": ErrorClass.INVALID_INPUT,  # the bucket is in another region
    "EntityTooLarge": ErrorClass.INVALID_INPUT,
    # Azure Storage (x-ms-error-code)
    "ServerBusy": ErrorClass.RATE_LIMITED,  # 503: the account's or partition's limits
    "OperationTimedOut": ErrorClass.TIMEOUT,  # 500: the server's own time limit
    "AuthenticationFailed": ErrorClass.AUTH,
    "AuthorizationFailure": ErrorClass.AUTH,
    "AuthorizationPermissionMismatch": ErrorClass.AUTH,
    "InsufficientAccountPermissions": ErrorClass.AUTH,
    "ContainerNotFound": ErrorClass.INVALID_INPUT,
    "BlobNotFound": ErrorClass.INVALID_INPUT,
    "ResourceNotFound": ErrorClass.INVALID_INPUT,
})

# (a class along the exception's hierarchy, by module and name; the attribute
# holding the HTTP status; the one holding a service's error code, if any).
STATUS_ATTRIBUTES: tuple[tuple[str, str, str | None], ...] = (
    ("gcsfs.retry.HttpError", "code", None),  # the JSON error's code: an int, or its text
    ("google.api_core.exceptions.GoogleAPICallError", "code", None),  # a class attribute
    ("azure.core.exceptions.HttpResponseError", "status_code", "error_code"),
    ("aiohttp.client_exceptions.ClientResponseError", "status", None),
)

STATUS_CLASSES: Mapping[int, ErrorClass] = MappingProxyType({
    401: ErrorClass.AUTH,
    403: ErrorClass.AUTH,
    404: ErrorClass.INVALID_INPUT,
    408: ErrorClass.TIMEOUT,
    429: ErrorClass.RATE_LIMITED,
})
CLASS_BY_HUNDRED: Mapping[int, ErrorClass] = MappingProxyType({
    4: ErrorClass.INVALID_INPUT,
    5: ErrorClass.SERVER,
})

# Checked against the names of the exception's classes (its MRO), in order; a
# dotted row against their module-qualified names.
TYPE_CLASSES: tuple[tuple[str, ErrorClass], ...] = (
    # azure-core, when no answer with a status came: the timeouts first, as
    # they are subclasses of the two that follow.
    ("azure.core.exceptions.ServiceRequestTimeoutError", ErrorClass.TIMEOUT),
    ("azure.core.exceptions.ServiceResponseTimeoutError", ErrorClass.TIMEOUT),
    ("azure.core.exceptions.ServiceRequestError", ErrorClass.NETWORK),  # nothing was sent
    ("azure.core.exceptions.ServiceResponseError", ErrorClass.NETWORK),  # the answer was lost
    # azure-identity's CredentialUnavailableError is one of these.
    ("azure.core.exceptions.ClientAuthenticationError", ErrorClass.AUTH),
    ("azure.core.exceptions.ResourceNotFoundError", ErrorClass.INVALID_INPUT),
    # google-auth, under gcsfs (which tried a refresh several times already).
    ("google.auth.exceptions.RefreshError", ErrorClass.AUTH),
    ("google.auth.exceptions.DefaultCredentialsError", ErrorClass.AUTH),
    ("google.auth.exceptions.TransportError", ErrorClass.NETWORK),
    ("PermissionError", ErrorClass.AUTH),
    ("NoCredentialsError", ErrorClass.AUTH),  # botocore: nothing in the chain
    ("PartialCredentialsError", ErrorClass.AUTH),
    ("FileNotFoundError", ErrorClass.INVALID_INPUT),
    ("IsADirectoryError", ErrorClass.INVALID_INPUT),
    ("NotADirectoryError", ErrorClass.INVALID_INPUT),
    ("FSTimeoutError", ErrorClass.TIMEOUT),  # fsspec's sync wrapper gave up
    ("TimeoutError", ErrorClass.TIMEOUT),  # socket.timeout, asyncio.TimeoutError
    ("ReadTimeoutError", ErrorClass.TIMEOUT),  # botocore
    ("ConnectTimeoutError", ErrorClass.TIMEOUT),
    # reset, refused, aborted, broken pipe; requests' (gcsfs raises its
    # ProxyError for a 502) has the same name
    ("ConnectionError", ErrorClass.NETWORK),
    ("EndpointConnectionError", ErrorClass.NETWORK),  # botocore
    ("ConnectionClosedError", ErrorClass.NETWORK),
    ("HTTPClientError", ErrorClass.NETWORK),
    ("ClientConnectionError", ErrorClass.NETWORK),  # aiohttp
    ("ClientPayloadError", ErrorClass.NETWORK),
    ("ServerDisconnectedError", ErrorClass.NETWORK),
    ("IncompleteRead", ErrorClass.NETWORK),
    ("ResponseParserError", ErrorClass.SERVER),  # a throttling answer that is not XML
)

ERRNO_CLASSES: Mapping[int, ErrorClass] = MappingProxyType({
    errno.EBUSY: ErrorClass.RATE_LIMITED,  # s3fs: SlowDown, ServiceUnavailable, 409
    errno.EIO: ErrorClass.SERVER,  # s3fs: a server error it has no name for
    errno.EACCES: ErrorClass.AUTH,
    errno.EPERM: ErrorClass.AUTH,
    errno.ENOENT: ErrorClass.INVALID_INPUT,
    errno.EINVAL: ErrorClass.INVALID_INPUT,
    errno.ENOSPC: ErrorClass.DISK_FULL,
    errno.ETIMEDOUT: ErrorClass.TIMEOUT,
    errno.ECONNRESET: ErrorClass.NETWORK,
    errno.ECONNREFUSED: ErrorClass.NETWORK,
})


# (the class of a bare OSError, without an errno, whose message starts so).
MESSAGE_CLASSES: tuple[tuple[str, ErrorClass], ...] = (
    ("Forbidden: ", ErrorClass.AUTH),  # gcsfs: a 403, as OSError(f"Forbidden: {path}\n{msg}")
)


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _names(cls: type, qualified: bool) -> list[str]:
    return [f"{c.__module__}.{c.__qualname__}" if qualified else c.__name__ for c in cls.__mro__]


def _answer(exc: BaseException) -> tuple[str | None, int | None]:
    """The error code and HTTP status a server answered, if any exception
    in the chain carries them (botocore's ClientError does, and the
    classes of ``STATUS_ATTRIBUTES``)."""
    for e in _chain(exc):
        response = getattr(e, "response", None)
        if isinstance(response, Mapping):
            code = (response.get("Error") or {}).get("Code")
            status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
            return (str(code) if code else None), _status(status)
        qualified = _names(type(e), qualified=True)
        for name, status_attribute, code_attribute in STATUS_ATTRIBUTES:
            if name in qualified:
                code = getattr(e, code_attribute, None) if code_attribute else None
                return (str(code) if code else None), _status(getattr(e, status_attribute, None))
    return None, None


def _status(value) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None  # a code that is not a number


def class_of_storage_error(exc: BaseException) -> ErrorClass:
    code, status = _answer(exc)
    if code in CODE_CLASSES:
        return CODE_CLASSES[code]
    if status is not None and status >= 400:
        return STATUS_CLASSES.get(status) or CLASS_BY_HUNDRED.get(status // 100,
                                                                   ErrorClass.SERVER)
    names, qualified = _names(type(exc), False), _names(type(exc), True)
    for name, error_class in TYPE_CLASSES:
        if name in (qualified if "." in name else names):
            return error_class
    if isinstance(exc, OSError) and exc.errno in ERRNO_CLASSES:
        return ERRNO_CLASSES[exc.errno]
    if type(exc) is OSError and exc.errno is None:
        for start, error_class in MESSAGE_CLASSES:
            if str(exc).startswith(start):
                return error_class
    return ErrorClass.INTERNAL


def describe(exc: BaseException) -> str:
    code, status = _answer(exc)
    if code or status:
        return f"{code or 'HTTP'} {status or ''}".strip()
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return type(exc).__name__ + (f": {detail[:200]}" if detail else "")


def storage_error(exc: BaseException, doing: str) -> PipelineError:
    """Our error for a storage failure while ``doing`` (e.g. "cannot write
    s3://b/k"): InvalidInput when retrying cannot help (a missing bucket or
    object, a bad name), else a StorageError of the retryable class or AUTH.
    One of ours (classed where it was raised) is given back as it is."""
    if isinstance(exc, PipelineError):
        return exc
    error_class = class_of_storage_error(exc)
    message = f"{doing}: {describe(exc)}"
    if error_class is ErrorClass.AUTH:
        message += ("; check the storage credentials (environment, profile or instance role) "
                    "and the bucket's policy")
    if error_class is ErrorClass.INVALID_INPUT:
        return InvalidInput(message)
    return StorageError(message, error_class=error_class)
