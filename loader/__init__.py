"""loader: a plugin-based, browser-style resource loader with status events.

The public API is re-exported here; everything in underscore modules is internal.
"""

from typing import TYPE_CHECKING as _TYPE_CHECKING

from ._lazy import lazy_exports as _lazy_exports

# Names are imported on first use (PEP 562), so `loader --help` and plugins that
# only need `hookimpl` do not pay for the whole package.
_EXPORTS = {
    "Channel": "._protocol",
    "ConnectError": "._errors",
    "ConnectTimeout": "._errors",
    "DeadlineExceeded": "._errors",
    "Event": "._events",
    "HTTPNotFound": "._errors",
    "HarCollector": ".har",
    "HTTPStatusError": "._errors",
    "IdleTimeout": "._errors",
    "InvalidURL": "._errors",
    "Limits": "._models",
    "Loader": "._loader",
    "LoaderError": "._errors",
    "LoginFailed": "._errors",
    "NameResolutionError": "._errors",
    "NetworkError": "._errors",
    "NotFound": "._errors",
    "Origin": "._models",
    "PermissionDenied": "._errors",
    "Phase": "._events",
    "PluginError": "._errors",
    "PolicyDenied": "._errors",
    "ProtocolError": "._errors",
    "ProtocolHandler": "._protocol",
    "RedirectError": "._errors",
    "Request": "._models",
    "RequestCancelled": "._errors",
    "Response": "._protocol",
    "ResponseError": "._errors",
    "Result": "._models",
    "Retries": "._models",
    "SaveError": "._errors",
    "SizeLimitExceeded": "._errors",
    "SyncLoader": "._sync",
    "TimeoutError": "._errors",
    "Timeouts": "._models",
    "TransportError": "._errors",
    "UnsupportedScheme": "._errors",
    "hookimpl": ".hookspecs",
    "redact_url": "._urls",
    "check_peer": "._net",
    "har_from": ".har",
    "make_ssl_context": "._net",
    "open_connection": "._net",
    "resolve_host": "._net",
    "write_har": ".har",
}


if _TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from ._errors import (
        ConnectError,
        ConnectTimeout,
        DeadlineExceeded,
        HTTPNotFound,
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
    from ._net import check_peer, make_ssl_context, open_connection, resolve_host
    from ._protocol import Channel, ProtocolHandler, Response
    from ._sync import SyncLoader
    from ._urls import redact_url
    from .har import HarCollector, har_from, write_har
    from .hookspecs import hookimpl

__version__ = "0.1.0"

#: The public names: one list, the export table's keys (the block above only mirrors
#: it for type checkers, and a test holds the two in step).
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = _lazy_exports(__name__, _EXPORTS, __all__)
