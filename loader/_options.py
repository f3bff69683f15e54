"""The command's wget- and curl-style options: proxy, credentials, referer, verbose heads, CA file,
input files, timestamping and a ``--json`` run summary.

:mod:`loader.cli` calls three functions and nothing else here:
:func:`add_user_options` (from ``add_common_options``, once per subcommand parser),
:func:`parse_args` (instead of ``parser.parse_args``: the config file, ``-i`` and the
run wrappers) and :func:`loader_options` (extra ``Loader`` keyword arguments).

Credentials: a URL's own ``user:password@`` wins, then an ``Authorization`` given with
``-H``, then ``--user`` (sent only to the origins of the URLs named on the command line
or in ``-i``, so a page's requisites on other hosts never see it), then ``~/.netrc``
(``$NETRC``, ``--netrc-file``), by exact host: its ``default`` entry is never used for
HTTP, as it would hand the same password to every host a page links to.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import time
from collections.abc import Awaitable, Callable, Generator, Iterable, Sequence
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ._events import Phase
from ._urls import split_origin
from .hookspecs import hookimpl

if TYPE_CHECKING:
    from ._context import PluginContext
    from ._events import Event
    from ._loader import Loader
    from ._models import Request
    from ._protocol import ProtocolHandler

    #: A subcommand's run: ``run(args, loader)`` gives the exit code (as in ``cli``).
    Command = Callable[[argparse.Namespace, Loader], Awaitable[int]]

__all__ = ["RunSummary", "add_user_options", "loader_options", "parse_args", "read_url_list"]


def _proxy(text: str) -> str:
    """A proxy URL; ``host:port`` alone means ``http://host:port`` (as curl reads it)."""
    value = text.strip()
    if "://" not in value:
        value = f"http://{value}"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid proxy URL: {text!r}") from None
    if parts.scheme.lower() not in ("http", "https", "socks5", "socks5h") or not parts.hostname:
        raise argparse.ArgumentTypeError(
            f"invalid proxy URL: {text!r} (expected http://HOST:PORT, https:// or socks5://)"
        )
    return value


def _existing_file(text: str) -> str:
    if not os.path.isfile(text):
        raise argparse.ArgumentTypeError(f"no such file: {text!r}")
    return text


def add_user_options(parser: argparse.ArgumentParser) -> None:
    """Add the wget/curl options to a subcommand's parser.

    ``-i`` goes to ``fetch``, ``-N`` to ``get``, ``--json`` to both; a plugin's
    subcommand gets the others, except any name it already uses for its own option.
    """
    words = parser.prog.split()
    command = words[1] if len(words) == 2 else None  # "loader fetch"; not "loader ftp get"
    # Our own subcommands have none of these names; a plugin's may (gopher's --json).
    taken: set[str] = set()
    if command not in ("fetch", "get", "demo"):
        from ._completion import collect_actions  # not at start-up of fetch and get (~1 ms)

        taken = {option for action in collect_actions(parser) for option in action.option_strings}
    g = parser.add_argument_group("wget and curl options")

    def add(*names: str, **options: Any) -> None:
        if any(name.startswith("--") and name in taken for name in names):
            return  # the subcommand's own option of that name stays
        g.add_argument(*(name for name in names if name not in taken), **options)

    if command == "fetch":
        add("-i", "--input-file", action="append", default=[], metavar="FILE",
            help="read page URLs from FILE, one a line ('-' for stdin; # starts a comment)")
    if command == "get":
        add("-N", "--timestamping", action="store_true",
            help="send If-Modified-Since from the file's time; an unchanged file is left as it is "
                 "and a new one gets the server's Last-Modified time")
    # -4 and -6 are not declared to argparse: an option that looks like a negative
    # number makes it read every "-1" as an option ("--retries -1" would lose its
    # "must be at least 0" message); parse_args spells them out first.
    family = g.add_mutually_exclusive_group()
    if "--ipv4" not in taken and "--ipv6" not in taken:
        family.add_argument("--ipv4", dest="ip_version", action="store_const", const=4,
                            help="-4: connect over IPv4 only (HTTP)")
        family.add_argument("--ipv6", dest="ip_version", action="store_const", const=6,
                            help="-6: connect over IPv6 only (HTTP)")
    add("--proxy", type=_proxy, metavar="URL",
        help="send HTTP and HTTPS through this proxy (instead of the *_proxy variables)")
    add("-u", "--user", metavar="USER[:PASSWORD]",
        help="HTTP Basic credentials for the hosts of the URLs given (not their requisites' hosts)")
    add("--password", metavar="PASSWORD", help="the password for --user")
    add("--netrc-file", type=_existing_file, metavar="FILE",
        help="credentials by host for HTTP (default $NETRC or ~/.netrc)")
    add("--no-netrc", action="store_true", help="do not read ~/.netrc for HTTP")
    add("--referer", metavar="URL", help="Referer header")
    add("-v", "--verbose", action="store_true",
        help="print request and response heads to stderr (credentials hidden)")
    add("--cacert", type=_existing_file, metavar="FILE",
        help="trust the CA certificates in FILE (PEM) instead of the system's")
    if command in ("fetch", "get"):
        add("--json", action="store_true",
            help="print a JSON run summary on stdout: fetched, failed, skipped, bytes, seconds")
    add("--config", metavar="FILE", help="read default options from FILE (default ~/.config/loader/config.toml)")
    add("--no-config", action="store_true", help="read no config file")


# -- input files -----------------------------------------------------------------------


def read_url_list(lines: Iterable[str]) -> list[str]:
    """The URLs of an ``-i`` file: one a line, blank lines and ``#`` comments skipped."""
    urls = []
    for line in lines:
        text = line.strip()
        if text and not text.startswith("#"):
            urls.append(text)
    return urls


def _input_urls(names: Sequence[str], stdin: IO[str]) -> list[str]:
    urls: list[str] = []
    for name in names:
        if name == "-":
            urls.extend(read_url_list(stdin))
            continue
        try:
            with open(name, encoding="utf-8") as handle:
                urls.extend(read_url_list(handle))
        except (OSError, UnicodeDecodeError) as exc:
            cause = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise _UsageError(f"cannot read the input file {name}: {cause}") from None
    return urls


class _UsageError(Exception):
    """A usage problem found after argparse: reported as ``error: …`` with exit code 2."""


# -- parsing ---------------------------------------------------------------------------


def parse_args(
    parser: argparse.ArgumentParser, argv: Sequence[str], *, stdin: IO[str] | None = None
) -> argparse.Namespace:
    """``parser.parse_args(argv)`` with the config file's defaults, ``-i`` URLs and the run wrappers.

    A usage error exits through ``parser.error`` (exit code 2), as argparse's own do.
    """
    from ._config import apply_config

    argv = _spell_out_families(parser, argv)
    try:
        apply_config(parser, argv)
    except ValueError as exc:
        parser.error(str(exc))
    args = parser.parse_args(argv)
    try:
        _complete(args, stdin if stdin is not None else sys.stdin)
    except _UsageError as exc:
        parser.error(str(exc))
    return args


_FAMILIES = {"-4": "--ipv4", "-6": "--ipv6"}


def _spell_out_families(parser: argparse.ArgumentParser, argv: Sequence[str]) -> list[str]:
    """``argv`` with a ``-4``/``-6`` that stands as an option written ``--ipv4``/``--ipv6``.

    Not when it is the value of the option before it (``--retries -4`` stays a bad count).
    """
    words = list(argv)
    if not any(word in _FAMILIES for word in words):
        return words
    from ._completion import collect_actions, subcommands

    command = next((word for word in words if not word.startswith("-")), None)
    sub = subcommands(parser).get(command or "")
    if sub is None:
        return words
    actions = collect_actions(sub)
    if not any("--ipv4" in action.option_strings for action in actions):
        return words
    takes_value = {o for action in actions if action.nargs != 0 for o in action.option_strings}
    for index, word in enumerate(words):
        if word == "--":
            break
        if word in _FAMILIES and (index == 0 or words[index - 1] not in takes_value):
            words[index] = _FAMILIES[word]
    return words


#: Options of ``fetch -r`` that mean nothing without it (``--level`` has a default).
_CRAWL_ONLY = {
    "span_hosts": "--span-hosts", "domains": "-D", "accept_regex": "--accept-regex",
    "reject_regex": "--reject-regex", "no_parent": "-np", "max_pages": "--max-pages", "state": "--state",
    "no_robots": "--no-robots", "wait": "--wait", "random_wait": "--random-wait", "limit_rate": "--limit-rate",
}


def _complete(args: argparse.Namespace, stdin: IO[str]) -> None:
    command = getattr(args, "command", None)
    if command == "fetch":
        args.urls = list(args.urls) + _input_urls(getattr(args, "input_file", []), stdin)
        if not args.urls:
            raise _UsageError("fetch: no URL given (name one, or a file of them with -i FILE)")
    if getattr(args, "password", None) is not None and not getattr(args, "user", None):
        raise _UsageError("--password needs --user")
    summary = command in ("fetch", "get") and getattr(args, "json", False)
    if summary:
        if getattr(args, "events", None) == "-":
            raise _UsageError("--json and --events - both write to stdout: give --events a file")
        if command == "get" and getattr(args, "output", None) == "-":
            raise _UsageError("--json and -o - both write to stdout: give -o a file")
        if command == "fetch" and getattr(args, "list", False):
            raise _UsageError("--json and --list both write to stdout: choose one")
    if command == "fetch" and not getattr(args, "recursive", True):
        given = [name for name in _CRAWL_ONLY if getattr(args, name, None) not in (None, False)]
        if given:
            raise _UsageError(f"{', '.join(_CRAWL_ONLY[n] for n in given)} go with -r (--recursive)")
    if command == "fetch" and getattr(args, "recursive", False):
        for name, option in (("list", "--list"), ("har", "--har"), ("report", "--report")):
            if getattr(args, name, None):
                raise _UsageError(f"{option} is for single pages: not with -r")
    if command == "fetch" and getattr(args, "explain", False) and not getattr(args, "list", False):
        raise _UsageError("--explain goes with --list: it explains what discovery chose")
    if command == "get" and getattr(args, "timestamping", False):
        if args.output == "-" or args.resume:
            raise _UsageError("-N needs a file to compare with: not with -o - or -c")
        if getattr(args, "body_parts", None) or getattr(args, "upload", None) or getattr(args, "method", None) not in (None, "GET"):
            raise _UsageError("-N asks whether the file changed: a plain GET, not with -X, -d or -T")
        args.timestamped = True  # cli's get compares with the file first
    run = getattr(args, "run", None)
    if run is not None and summary:
        args._summary = RunSummary()
        args.run = _with_summary(run)


# -- the loader's extras ---------------------------------------------------------------


#: ``--ip-version`` to the ``local_address`` that binds a connection to that family.
_FAMILY_ADDRESS: dict[int | None, str] = {4: "0.0.0.0", 6: "::"}  # noqa: S104 - a family, not a listener


def loader_options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments for ``Loader``: ``verify``, ``proxy``, ``local_address`` and the options' plugin."""
    verify: bool | str = True
    if getattr(args, "insecure", False):
        verify = False
    elif getattr(args, "cacert", None):
        verify = args.cacert
    options: dict[str, Any] = {
        "verify": verify,
        "proxy": getattr(args, "proxy", None),
        "local_address": _FAMILY_ADDRESS.get(getattr(args, "ip_version", None)),
    }
    plugin = RequestOptions.from_args(args)
    summary = getattr(args, "_summary", None)
    plugins: list[tuple[str, Any]] = []
    if plugin is not None:
        plugins.append(("cli-options", plugin))
    if summary is not None:
        plugins.append(("cli-summary", summary))
    if plugins:
        options["plugins"] = plugins
    return options


def _origin(url: str) -> tuple[str, str, int | None] | None:
    origin = split_origin(url)
    if origin is None:
        return None
    scheme, host, port = origin
    return scheme, host, port or {"http": 80, "https": 443}.get(scheme)


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def _netrc_hosts(path: str | None) -> dict[str, tuple[str, str]]:
    """``host -> (login, password)`` of a netrc file; nothing for a missing or refused file."""
    import netrc

    if path is None:
        path = os.environ.get("NETRC") or None
    try:
        # With no file named, the standard library reads ~/.netrc and refuses one that
        # others may read (a password file should not be).
        entries = netrc.netrc(path)
    except (OSError, netrc.NetrcParseError):
        return {}
    return {
        host.lower(): (login, password or "")
        for host, (login, _account, password) in entries.hosts.items()
        if host != "default" and login
    }


class RequestOptions:
    """A plugin adding ``Referer`` and credentials to HTTP requests, and printing heads for ``-v``."""

    def __init__(
        self,
        *,
        referer: str | None = None,
        user: tuple[str, str] | None = None,
        user_origins: Iterable[tuple[str, str, int | None]] = (),
        netrc: dict[str, tuple[str, str]] | None = None,
        verbose: IO[str] | argparse.Namespace | None = None,
    ) -> None:
        self.referer = referer
        self.user = user
        self.user_origins = frozenset(user_origins)
        self.netrc = netrc or {}
        #: Where ``-v`` writes: a stream, or a namespace whose ``_stderr`` is one (the live
        #: display swaps it for its console while it runs).
        self.verbose = verbose

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> RequestOptions | None:
        """The plugin for a command line's options, or ``None`` when none asks for one."""
        user: tuple[str, str] | None = None
        if getattr(args, "user", None):
            name, colon, password = args.user.partition(":")
            if args.password is not None:
                password = args.password
            elif not colon:
                import getpass

                password = getpass.getpass(f"password for {name}: ")
            user = (name, password)
        urls = getattr(args, "urls", None) or [getattr(args, "url", "")]
        netrc = {} if getattr(args, "no_netrc", False) else _netrc_hosts(getattr(args, "netrc_file", None))
        plugin = cls(
            referer=getattr(args, "referer", None),
            user=user,
            user_origins=[o for o in map(_origin, urls) if o is not None],
            netrc=netrc,
            verbose=args if getattr(args, "verbose", False) else None,
        )
        if not (plugin.referer or plugin.user or plugin.netrc or plugin.verbose):
            return None
        return plugin

    def credentials(self, url: str) -> tuple[str, str] | None:
        """The ``(user, password)`` to send with ``url``, or ``None``."""
        origin = _origin(url)
        if origin is None or origin[0] not in ("http", "https"):
            return None
        if self.user is not None and origin in self.user_origins:
            return self.user
        return self.netrc.get(origin[1])

    @hookimpl
    def loader_prepare_request(self, request: Request) -> Request | None:
        """Add ``Referer`` and ``Authorization`` to an HTTP request; print its head for ``-v``."""
        url = request.url
        scheme = url.split(":", 1)[0].lower()
        if scheme not in ("http", "https"):
            return None
        headers = dict(request.headers)
        names = {name.lower() for name in headers}
        if self.referer and "referer" not in names:
            headers["Referer"] = self.referer
        has_userinfo = "@" in urlsplit(url).netloc
        if not has_userinfo and "authorization" not in names:
            found = self.credentials(url)
            if found is not None:
                headers["Authorization"] = _basic(*found)
        if self.verbose is not None:
            from ._verbose import request_head

            self._write(request_head(request.method, url, headers))
        if headers == dict(request.headers):
            return None
        import dataclasses

        return dataclasses.replace(request, headers=headers)

    @hookimpl(wrapper=True)
    def loader_protocol(
        self, scheme: str, context: PluginContext
    ) -> Generator[None, ProtocolHandler | None, ProtocolHandler | None]:
        """For ``-v``: the HTTP handler the other plugins give, wrapped to print each response head."""
        inner = yield
        if inner is None or self.verbose is None or scheme not in ("http", "https"):
            return inner
        from ._verbose import ShowResponseHead

        return ShowResponseHead(inner, self._write)

    #: Only redirects are shown: the core builds no other event for this observer.
    loader_event_phases = frozenset({Phase.REDIRECT})

    @hookimpl
    def loader_event(self, event: Event) -> None:
        """For ``-v``: each redirect followed (the handler follows them inside one request)."""
        if self.verbose is not None and event.phase.name == "REDIRECT" and event.new_url:
            from ._display import shown_url

            self._write(f"* redirected to {shown_url(event.new_url)}\n")

    def _write(self, text: str) -> None:
        verbose = self.verbose
        stream: IO[str] | None = verbose._stderr if isinstance(verbose, argparse.Namespace) else verbose
        if stream is not None:
            stream.write(text)


# -- the --json run summary ------------------------------------------------------------


class RunSummary:
    """An observer gathering what a run fetched, failed and skipped, for ``--json``."""

    #: A request is counted by its last event: no other is built for this observer.
    loader_event_phases = frozenset({Phase.REQUEST_COMPLETE, Phase.FAILED, Phase.CANCELLED})

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.fetched: list[dict[str, Any]] = []
        self.failed: list[dict[str, Any]] = []
        self.skipped: list[dict[str, Any]] = []
        self.bytes = 0
        #: More sections of the summary (``fetch -r`` adds ``crawl``: pages, resources …).
        self.extra: dict[str, Any] = {}

    @hookimpl
    def loader_event(self, event: Event) -> None:
        """Count each request once, by its last event."""
        phase = event.phase.name
        if phase == "REQUEST_COMPLETE":
            done = event.bytes_done or 0
            entry: dict[str, Any] = {"url": event.url, "kind": event.kind, "status": event.status, "bytes": done}
            if event.synchronous:  # already there (--exists skip, -c of a whole file), a data: URL
                entry["reason"] = "not transferred"
                self.skipped.append(entry)
            elif event.status == 304:  # -N: the copy here is current
                entry["reason"] = "not modified"
                self.skipped.append(entry)
            else:
                self.fetched.append(entry)
                self.bytes += done
        elif phase in ("FAILED", "CANCELLED"):
            from ._progress import failure_text

            error = event.error
            text = failure_text(event.url, error) if error is not None else phase.lower()
            self.failed.append({"url": event.url, "kind": event.kind, "error": text})

    def to_json(self, exit_code: int) -> dict[str, Any]:
        """The summary as printed: lists, counts, bytes transferred, seconds and the exit code."""
        return {
            "exit_code": exit_code,
            "seconds": round(time.monotonic() - self.started, 3),
            "bytes": self.bytes,
            "counts": {"fetched": len(self.fetched), "failed": len(self.failed), "skipped": len(self.skipped)},
            "fetched": self.fetched,
            "failed": self.failed,
            "skipped": self.skipped,
            **self.extra,
        }


def _with_summary(run: Command) -> Command:
    async def run_with_summary(args: argparse.Namespace, loader: Loader) -> int:
        code = int(await run(args, loader))
        import json

        args._stdout.write(json.dumps(args._summary.to_json(code)) + "\n")
        return code

    return run_with_summary
