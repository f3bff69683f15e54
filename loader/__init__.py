"""loader: a plugin-based, browser-style resource loader with status events.

The public API is re-exported here; everything in underscore modules is internal.
"""

from ._errors import (
    ConnectError,
    ConnectTimeout,
    DeadlineExceeded,
    HTTPStatusError,
    IdleTimeout,
    InvalidURL,
    LoaderError,
    LoginFailed,
    NameResolutionError,
    NetworkError,
    NotFound,
    PermissionDenied,
    PluginError,
    PolicyDenied,
    ProtocolError,
    RedirectError,
    RequestCancelled,
    ResponseError,
    SaveError,
    SizeLimitExceeded,
    TimeoutError,
    TransportError,
    UnsupportedScheme,
)
from ._events import Event, Phase
from ._loader import Loader
from ._models import Limits, Origin, Request, Result, Retries, Timeouts
from ._net import resolve_host
from ._protocol import Channel, ProtocolHandler, Response
from ._sync import SyncLoader
from ._urls import redact_url
from .hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = [
    "Channel",
    "ConnectError",
    "ConnectTimeout",
    "DeadlineExceeded",
    "Event",
    "HTTPStatusError",
    "IdleTimeout",
    "InvalidURL",
    "Limits",
    "Loader",
    "LoaderError",
    "LoginFailed",
    "NameResolutionError",
    "NetworkError",
    "NotFound",
    "Origin",
    "PermissionDenied",
    "Phase",
    "PluginError",
    "PolicyDenied",
    "ProtocolError",
    "ProtocolHandler",
    "RedirectError",
    "Request",
    "RequestCancelled",
    "Response",
    "ResponseError",
    "Result",
    "Retries",
    "SaveError",
    "SizeLimitExceeded",
    "SyncLoader",
    "TimeoutError",
    "Timeouts",
    "TransportError",
    "UnsupportedScheme",
    "hookimpl",
    "redact_url",
    "resolve_host",
]
