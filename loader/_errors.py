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
    │   ├── NotFound            e.g. FTP 550, Gopher error item
    │   ├── PermissionDenied
    │   └── LoginFailed         e.g. FTP 530
    ├── RedirectError           too many redirects, a loop, or a non-HTTP target
    ├── SizeLimitExceeded       a body or a page grew past its cap
    ├── SaveError               the body could not be written where it belongs
    └── RequestCancelled        the caller (or a callback) cancelled the request

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

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.url = url

    def __str__(self) -> str:
        return f"{self.url}: {self.message}" if self.url else self.message


class InvalidURL(LoaderError):
    """The URL cannot be parsed, or carries characters that would be unsafe to send."""


class UnsupportedScheme(LoaderError):
    """No installed (and enabled) plugin handles the URL's scheme."""


class PolicyDenied(LoaderError):
    """A policy refused the URL: a ``loader_allow`` hook, a blocked port, ``deny_private``."""


class PluginError(LoaderError):
    """A plugin raised an unexpected exception; ``plugin`` names it."""

    def __init__(self, message: str, *, plugin: str, url: str | None = None) -> None:
        super().__init__(f"plugin {plugin!r} failed: {message}", url=url)
        self.plugin = plugin


class TransportError(LoaderError):
    """Talking to the peer failed."""

    transient = True


class NameResolutionError(TransportError):
    """The host name could not be resolved."""

    # A name that does not resolve now will rarely resolve a second later.
    transient = False


class ConnectError(TransportError):
    """The connection could not be established (refused, unreachable, TLS failure)."""


class NetworkError(TransportError):
    """The connection broke while sending or receiving."""


class ProtocolError(TransportError):
    """The peer's reply violated the protocol."""

    transient = False


class TimeoutError(TransportError, builtins.TimeoutError):  # noqa: A001
    """A time limit passed."""


class ConnectTimeout(TimeoutError):
    """Connecting took longer than the connect timeout."""


class IdleTimeout(TimeoutError):
    """No data arrived for longer than the idle timeout."""


class DeadlineExceeded(TimeoutError):
    """The request's total deadline passed."""

    transient = False


class ResponseError(LoaderError):
    """The peer answered, but with a failure.  ``status`` is its code, if any."""

    def __init__(self, message: str, *, url: str | None = None, status: int | None = None) -> None:
        super().__init__(message, url=url)
        self.status = status


class HTTPStatusError(ResponseError):
    """An HTTP 4xx or 5xx response."""

    def __init__(
        self,
        message: str,
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


class PermissionDenied(ResponseError):
    """The server refused access to the resource."""


class LoginFailed(ResponseError):
    """The credentials were refused."""


class RedirectError(LoaderError):
    """Too many redirects, a redirect loop, or a redirect to a scheme we will not follow."""


class SizeLimitExceeded(LoaderError):
    """A body or a page grew past its configured cap."""


class SaveError(LoaderError):
    """The body could not be written to its destination."""


class RequestCancelled(LoaderError):
    """The request was cancelled by the caller or by a callback."""
