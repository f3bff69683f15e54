"""The one exception hierarchy.

Every error names the URL it is about and says the cause in words::

    LoaderError
    ├── InvalidURL              the URL cannot be parsed or has a forbidden character
    ├── UnsupportedScheme       no installed plugin handles the scheme
    ├── PolicyDenied            a ``loader_allow`` hook refused the URL
    ├── PluginError             a plugin raised something it should not have
    ├── TransportError          talking to the peer failed
    │   ├── NameResolutionError
    │   ├── ConnectError
    │   ├── NetworkError        the connection broke while reading or writing
    │   ├── ProtocolError       the peer spoke nonsense
    │   └── TimeoutError        (also a builtin ``TimeoutError``)
    │       ├── ConnectTimeout
    │       ├── IdleTimeout     no byte arrived for the idle limit
    │       └── DeadlineExceeded  the request's total deadline passed
    ├── ResponseError           the peer answered, with a failure
    │   ├── HTTPStatusError     HTTP 4xx/5xx
    │   │   └── HTTPNotFound    HTTP 404 and 410 (also a NotFound)
    │   ├── NotFound            e.g. FTP 550, Gopher error item, HTTP 404/410
    │   ├── PermissionDenied
    │   └── LoginFailed         e.g. FTP 530
    ├── RedirectError           too many redirects, a loop, or a non-HTTP target
    ├── SizeLimitExceeded       a body or a page grew past its cap
    ├── SaveError               the body could not be written where it belongs
    └── RequestCancelled        the caller (or a callback) cancelled the request

Every constructor takes the message first and the URL by keyword:
``NotFound("no such file", url=url)``; the message may be left out, and then
is the class's ``default_message`` (``NotFound(url=url)`` says "not found").
``ResponseError`` and its subclasses also take ``status=`` (the server's code),
``HTTPStatusError`` also ``retry_after=`` (seconds), ``PluginError`` requires
``plugin=`` (the plugin's name).

Plugins map their library's errors onto these at their boundary with
``raise ... from exc``.  A failed resource is a value in its
:class:`~loader.Result`, never an exception that tears down its siblings.
"""

from __future__ import annotations

import builtins

__all__ = [
    "ConnectError",
    "ConnectTimeout",
    "DeadlineExceeded",
    "HTTPNotFound",
    "HTTPStatusError",
    "IdleTimeout",
    "InvalidURL",
    "LoaderError",
    "LoginFailed",
    "NameResolutionError",
    "NetworkError",
    "NotFound",
    "PermissionDenied",
    "PluginError",
    "PolicyDenied",
    "ProtocolError",
    "RedirectError",
    "RequestCancelled",
    "ResponseError",
    "SaveError",
    "SizeLimitExceeded",
    "TimeoutError",
    "TransportError",
    "UnsupportedScheme",
]


class LoaderError(Exception):
    """Root of every error this package raises or reports."""

    #: Transient errors may succeed when retried (see ``Retries``).
    transient: bool = False
    #: The message when none is given.
    default_message: str = "failed"

    def __init__(self, message: str | None = None, *, url: str | None = None) -> None:
        if message is None:
            message = self.default_message
        super().__init__(message)
        self.message = message
        self.url = url

    def __str__(self) -> str:
        return f"{self.url}: {self.message}" if self.url else self.message


class InvalidURL(LoaderError):
    """The URL cannot be parsed, or carries characters that would be unsafe to send."""

    default_message = "invalid URL"


class UnsupportedScheme(LoaderError):
    """No installed (and enabled) plugin handles the URL's scheme."""

    default_message = "no plugin handles this scheme"


class PolicyDenied(LoaderError):
    """A policy refused the URL: a ``loader_allow`` hook, a blocked port, ``deny_private``."""

    default_message = "denied by policy"


class PluginError(LoaderError):
    """A plugin raised an unexpected exception; ``plugin`` names it (``None``: it could not be told)."""

    def __init__(self, message: str = "failed", *, plugin: str | None, url: str | None = None) -> None:
        who = "a plugin" if plugin is None else f"plugin {plugin!r}"
        super().__init__(f"{who} failed: {message}", url=url)
        self.plugin = plugin


class TransportError(LoaderError):
    """Talking to the peer failed."""

    default_message = "transport error"

    transient = True


class NameResolutionError(TransportError):
    """The host name could not be resolved."""

    default_message = "cannot resolve the host name"

    # A name that does not resolve now will rarely resolve a second later.
    transient = False


class ConnectError(TransportError):
    """The connection could not be established (refused, unreachable, TLS failure)."""

    default_message = "cannot connect"


class NetworkError(TransportError):
    """The connection broke while sending or receiving."""

    default_message = "connection broken"


class ProtocolError(TransportError):
    """The peer's reply violated the protocol."""

    default_message = "protocol error"

    transient = False


class TimeoutError(TransportError, builtins.TimeoutError):  # noqa: A001
    """A time limit passed."""

    default_message = "timed out"


class ConnectTimeout(TimeoutError):
    """Connecting took longer than the connect timeout."""

    default_message = "connect timed out"


class IdleTimeout(TimeoutError):
    """No data arrived for longer than the idle timeout."""

    default_message = "no data for the idle timeout"


class DeadlineExceeded(TimeoutError):
    """The request's total deadline passed."""

    default_message = "deadline exceeded"

    transient = False


class ResponseError(LoaderError):
    """The peer answered, but with a failure.  ``status`` is its code, if any."""

    default_message = "the server answered with a failure"

    def __init__(
        self, message: str | None = None, *, url: str | None = None, status: int | None = None
    ) -> None:
        super().__init__(message, url=url)
        self.status = status


class HTTPStatusError(ResponseError):
    """An HTTP 4xx or 5xx response."""

    default_message = "HTTP error"

    def __init__(
        self,
        message: str | None = None,
        *,
        url: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, url=url, status=status)
        self.retry_after = retry_after

    @property
    def transient(self) -> bool:  # type: ignore[override]
        return self.status in (429, 502, 503, 504)


class NotFound(ResponseError):
    """The resource does not exist."""

    default_message = "not found"


class HTTPNotFound(HTTPStatusError, NotFound):
    """HTTP 404 Not Found or 410 Gone.

    An :class:`HTTPStatusError` (``status``, ``retry_after``) that code catching
    :class:`NotFound` catches too, whichever protocol the URL used.
    """

    default_message = "HTTP 404 Not Found"


class PermissionDenied(ResponseError):
    """The server refused access to the resource."""

    default_message = "permission denied"


class LoginFailed(ResponseError):
    """The credentials were refused."""

    default_message = "login failed"


class RedirectError(LoaderError):
    """Too many redirects, a redirect loop, or a redirect to a scheme we will not follow."""

    default_message = "redirect failed"


class SizeLimitExceeded(LoaderError):
    """A body or a page grew past its configured cap."""

    default_message = "size limit exceeded"


class SaveError(LoaderError):
    """The body could not be written to its destination."""

    default_message = "cannot save"


class RequestCancelled(LoaderError):
    """The request was cancelled by the caller or by a callback."""

    default_message = "cancelled"
