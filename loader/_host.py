"""The plugin host: a loader's plugin manager, its protocol handlers and its policy hooks.

Every hook is called through ``pm.hook.*`` (``_plugins.call_hook``), so pluggy's
first-result, wrappers, tracing and monitoring apply; a plugin's exception becomes a
``PluginError`` naming it.  Handlers are built once per scheme (``loader_protocol``) and
closed with the host.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from collections.abc import Callable, Iterable, Mapping

import anyio
import pluggy

from ._context import PluginContext
from ._errors import PolicyDenied, UnsupportedScheme
from ._models import Request
from ._plugins import answers_by_plugin, call_hook, hook_unheard
from ._protocol import ProtocolHandler
from ._urls import redact_url

__all__ = ["PluginHost"]

log = logging.getLogger("loader")


@functools.cache
def _port_refusal() -> Callable[[str, frozenset[int], tuple[str, str, int | None] | None], str | None]:
    """:func:`loader._policy.port_refusal`, imported on first use (once, not per requisite)."""
    from ._policy import port_refusal

    return port_refusal


class PluginHost:
    """Owns ``pm``'s handlers and asks its policy hooks (see the module docstring).

    ``context`` builds the :class:`PluginContext` handed to ``loader_protocol`` (called
    when the first handler is made); ``headers`` are merged into every request before
    ``loader_prepare_request``; ``allow_ports`` lifts the refusal of other protocols'
    ports for requisites and redirects.
    """

    def __init__(
        self,
        pm: pluggy.PluginManager,
        context: Callable[[], PluginContext],
        *,
        headers: Mapping[str, str],
        allow_ports: Iterable[int] = (),
    ) -> None:
        self.pm = pm
        self.context = context
        self.headers = headers
        self.allow_ports = frozenset(allow_ports)
        self.handlers: dict[str, tuple[str, ProtocolHandler]] = {}

    async def aclose(self) -> None:
        """Close every handler made so far (their connection pools)."""
        handlers, self.handlers = self.handlers, {}
        with anyio.CancelScope(shield=True):
            for name, handler in handlers.values():
                try:
                    await handler.aclose()
                except Exception:
                    log.exception("plugin %r failed to close its handler", name)

    def handler(self, scheme: str) -> ProtocolHandler:
        """This loader's handler for ``scheme`` (created on first use by ``loader_protocol``)."""
        return self.handler_entry(scheme, None)[1]

    def handler_entry(self, scheme: str, url: str | None) -> tuple[str, ProtocolHandler]:
        """``(owning plugin's name, handler)`` for ``scheme``; ``url`` names the request in errors."""
        scheme = scheme.lower()
        entry = self.handlers.get(scheme)
        if entry is None:
            handler = call_hook(self.pm, "loader_protocol", url, scheme=scheme, context=self.context())
            if handler is None:
                known = ", ".join(sorted(self.schemes())) or "none"
                raise UnsupportedScheme(
                    f"no plugin handles the {scheme!r} scheme (installed: {known})", url=url
                )
            entry = (self.owner(scheme, handler), handler)
            self.handlers[scheme] = entry
        return entry

    def owner(self, scheme: str, handler: ProtocolHandler) -> str:
        """The plugin a handler's errors are blamed on.

        ``loader_protocol`` stops at the first handler and pluggy does not say whose
        it is: the plugin declaring the scheme owns it; for an undeclared scheme, the
        plugin answering ``loader_protocol`` whose module is nearest the handler's.
        """
        owner = self.schemes().get(scheme)
        if owner is not None:
            return owner
        where = type(handler).__module__.split(".")
        best, score = "?", -1
        for impl in reversed(self.pm.hook.loader_protocol.get_hookimpls()):
            if impl.wrapper or impl.hookwrapper:
                continue  # wraps another's handler: never its owner
            module = getattr(impl.plugin, "__name__", None) or type(impl.plugin).__module__
            common = len(os.path.commonprefix([where, str(module).split(".")]))
            if common > score:
                best, score = impl.plugin_name, common
        return best

    def schemes(self) -> dict[str, str]:
        """Every scheme an enabled plugin declares, mapped to the plugin's name."""
        found: dict[str, str] = {}
        for name, schemes in answers_by_plugin(self.pm, "loader_schemes"):
            for scheme in schemes or ():
                found.setdefault(scheme, name)
        return found

    def check_allowed(self, url: str, purpose: str, origin: tuple[str, str, int | None] | None = None) -> None:
        """Raise ``PolicyDenied`` when the core's port policy or a ``loader_allow`` hook refuses ``url``
        (``origin``: its :func:`~loader._urls.split_origin`, when the caller has it)."""
        if purpose in ("requisite", "redirect"):  # what a page or a server chose, not the user
            refusal = _port_refusal()(url, self.allow_ports, origin)
            if refusal is not None:
                raise PolicyDenied(refusal, url=redact_url(url))
        if hook_unheard(self.pm, "loader_allow"):
            return  # nothing to ask (a hook with implementations or monitors is always called)
        verdicts = call_hook(self.pm, "loader_allow", url, url=url, purpose=purpose)
        denials = [verdict for verdict in verdicts if verdict is False or isinstance(verdict, str)]
        if denials:
            # pluggy's answer names no plugin: only a denial asks again, plugin by
            # plugin, to say who refused (loader_allow is documented as side-effect free).
            for name, verdict in answers_by_plugin(self.pm, "loader_allow", url=url, purpose=purpose):
                if verdict is False or isinstance(verdict, str):
                    raise PolicyDenied(f"plugin {name!r} refused it: {verdict or 'denied'}", url=redact_url(url))
            reason = denials[0] or "denied"  # a wrapper's own verdict
            raise PolicyDenied(f"a plugin refused it: {reason}", url=redact_url(url))

    def prepare(self, request: Request) -> Request:
        """``request`` with the loader's headers merged in and ``loader_prepare_request`` applied."""
        if self.headers:
            merged = {**self.headers, **request.headers}
            request = dataclasses.replace(request, headers=merged)
        if hook_unheard(self.pm, "loader_prepare_request"):
            return request
        changed = call_hook(self.pm, "loader_prepare_request", request.url, request=request)
        # Each implementation sees the same request; the last one called that answers wins.
        return changed[-1] if changed else request
