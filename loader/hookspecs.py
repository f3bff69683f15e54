"""Every hook a loader plugin can implement, declared once.

Plugins are modules or objects with functions decorated by ``loader.hookimpl``
and registered through the ``loader`` entry-point group::

    [project.entry-points.loader]
    gemini = "loader_gemini"

Hooks are plain functions (never coroutines): anything that awaits is a method
of an object a hook returned (a :class:`~loader.ProtocolHandler`).  Each
:class:`~loader.Loader` owns its plugin manager, so two loaders never share
plugin state.  An exception raised by a hook fails only the request it was
called for, as a ``PluginError`` naming the plugin.  The core calls every hook
through ``pm.hook.<name>`` on the loader's public ``Loader.plugin_manager``, so
pluggy's ordering (later registered first, ``tryfirst``/``trylast``),
first-result, wrappers (``hookimpl(wrapper=True)``), tracing and
``add_hookcall_monitoring`` apply as in any pluggy project.  An installed plugin that
fails to import or register is skipped with one warning naming it (see
``loader._plugins``).  ``docs/plugins.md`` is the guide, with a complete
example plugin (``examples/loader-mem-example``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from ._context import PluginContext
    from ._events import Event
    from ._models import Request
    from ._protocol import ProtocolHandler
    from .discovery import Document, Found

hookspec = pluggy.HookspecMarker("loader")
hookimpl = pluggy.HookimplMarker("loader")


@hookspec
def loader_schemes() -> Sequence[str]:  # type: ignore[empty-body]  # a spec: pluggy never runs it
    """Return the URL schemes this plugin can handle, e.g. ``("gemini",)``.

    Called by ``loader plugins``, when reporting an unsupported scheme and when
    suggesting a scheme for a typo: it answers without building a handler
    (handlers are built lazily, per loader, by ``loader_protocol``).  All results
    are collected; it does not decide dispatch (``loader_protocol`` does).
    ``ProtocolHandler.schemes`` describes a handler once built; keep them the same.
    """


@hookspec(firstresult=True)
def loader_protocol(scheme: str, context: PluginContext) -> ProtocolHandler | None:
    """Return a protocol handler for ``scheme``, or ``None`` if this plugin does not handle it.

    Called by the loader the first time it needs ``scheme``; the handler is kept
    for the loader's lifetime and closed with it.  ``context`` is what the handler may
    know of the loader (timeouts, limits, TLS settings, proxy …: :class:`~loader.PluginContext`);
    each request's ``channel.context`` is the same object.  Stops at the first non-None
    result; plugins registered later are asked first, so a plugin can override
    a built-in one.
    """


@hookspec(firstresult=True)
def loader_url_key(url: str) -> str | None:
    """Return the key under which ``url`` counts as the same resource as another, or ``None``.

    Two plain GETs with one key are one request: the second waits for the first in
    flight and shares its result (body or saved file), and a key already fetched
    completes from the loader's memory.  The default (no implementation, or all
    answer ``None``) is ``loader._urls.canonical_url``: scheme and host lowercased,
    default port and fragment dropped, percent escapes normalised.  Keep it fast and
    side-effect free: it runs for every request.
    """


@hookspec
def loader_event(event: Event) -> None:
    """Observe every status event of every request of the loader.

    Called by the core, in order per request, on the event loop: keep it short
    (log, count, update a display).  The return value is ignored; an exception
    is logged and reported as a ``CALLBACK_ERROR`` event, never fails the transfer.

    A plugin object that needs only some phases may say so with a
    ``loader_event_phases`` attribute (a set of :class:`Phase`): when every observer
    names its phases and the call has no callback, the core does not build events
    of the other phases at all (a counter of finished files need not pay for every
    ``SENDING_REQUEST``).  It may still be handed other phases that others asked for.
    """


@hookspec
def loader_prepare_request(request: Request) -> Request | None:
    """Adjust a request before it is sent (headers, credentials, options).

    Called by the core before every attempt's first byte, after
    ``Loader(headers=...)`` were merged in.  Return a modified copy
    (``request.with_headers(...)``, ``dataclasses.replace(request, options=...)``)
    or ``None`` to leave it alone.  Every plugin receives the same request (pluggy
    passes each implementation the same arguments); of several modified copies
    the last one pluggy collects wins, i.e. that of the plugin called last.
    """


@hookspec
def loader_allow(url: str, purpose: str) -> bool | str | None:
    """Decide whether ``url`` may be fetched at all.

    Called by the core before every request starts, one that completes at once
    (a ``data:`` URL, a reused result, a file kept by ``exists="skip"``) included,
    and for every redirect target.
    ``purpose`` is ``"fetch"``, ``"page"``, ``"requisite"``, ``"redirect"`` or
    ``"operation"`` (a library operation such as an FTP listing or upload).
    Return ``False`` (or a string giving the reason) to deny, ``True`` or ``None``
    to allow.  Any single denial wins; the request fails with ``PolicyDenied``.
    After a denial each plugin is asked once more on its own, to name the one
    that refused: keep the hook free of side effects.
    """


@hookspec
def loader_extract(document: Document) -> Iterable[Found] | None:
    """Find more requisites in a parsed document (a site's own lazy attribute, say).

    Called by discovery once per document after the built-in extractors.
    ``document.type`` is ``"html"``, ``"css"`` or the ``Response.document`` name
    a plugin gave (``"gopher-menu"`` …); ``document.tree`` is the selectolax
    tree for HTML (``None`` for other document types).  Return
    :class:`~loader.discovery.Found` items or ``None``; their URLs are resolved
    against the document's base URL (for a plugin's own scheme too) and
    deduplicated, and their ``kind`` decides whether ``--kinds`` wants them.
    """


@hookspec
def loader_add_commands(subparsers: Any) -> None:
    """Add subcommands to the ``loader`` command line (``loader ftp …``, ``loader gopher …``).

    Called once by the CLI with argparse's sub-parsers object.  Create a parser
    with ``subparsers.add_parser(name, help=...)``, give it the shared options
    with ``loader.cli.add_common_options(parser)``, and set
    ``parser.set_defaults(run=coro_fn)`` where ``async def coro_fn(args, loader)
    -> int`` does the work with a ready ``Loader`` and returns the exit code.
    """
