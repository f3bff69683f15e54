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
    "Crawl": "._crawl",
    "CrawlPoliteness": "._crawl",
    "ConnectTimeout": "._errors",
    "DeadlineExceeded": "._errors",
    "Event": "._events",
    "Frontier": "._frontier",
    "HTTPNotFound": "._errors",
    "HarCollector": ".har",
    "HostLimiter": "._models",
    "HostStats": "._models",
    "HTTPStatusError": "._errors",
    "IdleTimeout": "._errors",
    "InvalidURL": "._errors",
    "Limits": "._models",
    "LocalFrontier": "._frontier",
    "Loader": "._loader",
    "LoaderError": "._errors",
    "LoginFailed": "._errors",
    "NameResolutionError": "._errors",
    "NetworkError": "._errors",
    "NotFound": "._errors",
    "Origin": "._models",
    "PermissionDenied": "._errors",
    "Phase": "._events",
    "PluginContext": "._context",
    "PluginError": "._errors",
    "PolicyDenied": "._errors",
    "ProtocolError": "._errors",
    "ProtocolHandler": "._protocol",
    "RecordedStream": "._context",
    "Recorder": "._context",
    "Recording": "._context",
    "RedirectError": "._errors",
    "RedisFrontier": "._frontier_redis",
    "RedisHostLimiter": "._frontier_redis",
    "Request": "._models",
    "RequestCancelled": "._errors",
    "Response": "._protocol",
    "ResponseError": "._errors",
    "Result": "._models",
    "Retries": "._models",
    "Stats": "._models",
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
    "record_resource": "._protocol",
    "har_from": ".har",
    "make_ssl_context": "._context",
    "open_connection": "._net",
    "resolve_host": "._net",
    "write_har": ".har",
}


if _TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    # "X as X" marks each an explicit re-export (mypy --strict: no implicit re-export).
    from ._context import PluginContext as PluginContext
    from ._context import RecordedStream as RecordedStream
    from ._context import Recorder as Recorder
    from ._context import Recording as Recording
    from ._context import make_ssl_context as make_ssl_context
    from ._crawl import Crawl as Crawl
    from ._crawl import CrawlPoliteness as CrawlPoliteness
    from ._errors import ConnectError as ConnectError
    from ._errors import ConnectTimeout as ConnectTimeout
    from ._errors import DeadlineExceeded as DeadlineExceeded
    from ._errors import HTTPNotFound as HTTPNotFound
    from ._errors import HTTPStatusError as HTTPStatusError
    from ._errors import IdleTimeout as IdleTimeout
    from ._errors import InvalidURL as InvalidURL
    from ._errors import LoaderError as LoaderError
    from ._errors import LoginFailed as LoginFailed
    from ._errors import NameResolutionError as NameResolutionError
    from ._errors import NetworkError as NetworkError
    from ._errors import NotFound as NotFound
    from ._errors import PermissionDenied as PermissionDenied
    from ._errors import PluginError as PluginError
    from ._errors import PolicyDenied as PolicyDenied
    from ._errors import ProtocolError as ProtocolError
    from ._errors import RedirectError as RedirectError
    from ._errors import RequestCancelled as RequestCancelled
    from ._errors import ResponseError as ResponseError
    from ._errors import SaveError as SaveError
    from ._errors import SizeLimitExceeded as SizeLimitExceeded
    from ._errors import TimeoutError as TimeoutError
    from ._errors import TransportError as TransportError
    from ._errors import UnsupportedScheme as UnsupportedScheme
    from ._events import Event as Event
    from ._events import Phase as Phase
    from ._frontier import Frontier as Frontier
    from ._frontier import LocalFrontier as LocalFrontier
    from ._frontier_redis import RedisFrontier as RedisFrontier
    from ._frontier_redis import RedisHostLimiter as RedisHostLimiter
    from ._loader import Loader as Loader
    from ._models import HostLimiter as HostLimiter
    from ._models import HostStats as HostStats
    from ._models import Limits as Limits
    from ._models import Origin as Origin
    from ._models import Request as Request
    from ._models import Result as Result
    from ._models import Retries as Retries
    from ._models import Stats as Stats
    from ._models import Timeouts as Timeouts
    from ._net import check_peer as check_peer
    from ._net import open_connection as open_connection
    from ._net import resolve_host as resolve_host
    from ._protocol import Channel as Channel
    from ._protocol import ProtocolHandler as ProtocolHandler
    from ._protocol import Response as Response
    from ._protocol import record_resource as record_resource
    from ._sync import SyncLoader as SyncLoader
    from ._urls import redact_url as redact_url
    from .har import HarCollector as HarCollector
    from .har import har_from as har_from
    from .har import write_har as write_har
    from .hookspecs import hookimpl as hookimpl

__version__ = "0.1.0"

#: The public names: one list, the export table's keys (the block above only mirrors
#: it for type checkers, and a test holds the two in step).
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = _lazy_exports(__name__, _EXPORTS, __all__)
