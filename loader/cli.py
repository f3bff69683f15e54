"""The ``loader`` command.

Exit codes (the same for every subcommand):

====  =====================================================================
0     everything requested arrived
1     partial failure: the page (or some items) arrived, some resources failed
2     bad usage (unknown option, malformed value, an output location that
      cannot be written): nothing was requested
3     total failure: the page / resource itself could not be fetched
129   hung up (SIGHUP); as 130
130   interrupted (Ctrl-C, SIGINT); nothing is left half-written (with ``-c``
      the partial data is kept for the next ``-c``)
143   terminated (SIGTERM); as 130
====  =====================================================================

A stop signal is handled from :func:`console`'s first instruction: it is
noted, never raised in the middle of an import or a write; before the event
loop the command stops at its next step, during it the run is cancelled (every
sink aborts, the ``--events`` file is flushed), and the exit code is 128 plus
the signal's number.

Plugins add subcommands with the ``loader_add_commands`` hook; they take the
shared options from :func:`add_common_options`, so an option name means the
same on every subcommand.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import dataclasses
import errno
import gc
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:  # names for annotations only: `loader --help` imports none of them
    from types import FrameType

    import anyio
    import anyio.abc
    import pluggy
    from rich.console import Console

    from ._loader import Loader
    from ._models import Result
    from ._options import Command
    from ._page import PageResult
    from ._progress import Count, LiveProgress, PlainProgress

    #: What ``signal.signal`` and ``signal.getsignal`` return.
    SignalHandler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_USAGE = 2
EXIT_FAILED = 3
EXIT_INTERRUPTED = 130

#: The signals that stop a run the way Ctrl-C does (SIGHUP is missing on Windows).
_STOP_SIGNALS: tuple[signal.Signals, ...] = tuple(
    sig for sig in (getattr(signal, name, None) for name in ("SIGINT", "SIGTERM", "SIGHUP")) if sig is not None
)

__all__ = ["add_common_options", "build_parser", "main", "make_loader", "run_with_loader"]


def _integer(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number: {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
    return value


def _positive_int(text: str) -> int:
    return _integer(text, 1)


def _count(text: str) -> int:
    return _integer(text, 0)


def _seconds(text: str) -> float | None:
    """A timeout in seconds; ``none`` (or ``off``) disables it.

    Zero is refused rather than read as "none": ``--connect-timeout 0`` reads as
    "give up at once", and silently waiting forever instead surprised people.
    """
    if text.strip().lower() in ("none", "off"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number of seconds: {text!r}") from None
    if not value > 0 or value == float("inf"):  # also NaN
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, not {text!r} ('none' disables it)")
    return value


#: Binary units of a SIZE: ``10K`` is 10 240 bytes (``KiB``, ``KB`` and ``k`` mean the same).
_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _size(text: str) -> int | None:
    """A byte count such as ``123``, ``10K``, ``64M``, ``1G`` (binary units); ``0`` or ``none``: no limit."""
    import re

    if text.strip().lower() in ("none", "unlimited"):
        return None
    match = re.fullmatch(r"\s*(\d+)\s*([kmgt]?)(?:i?b)?\s*", text, re.IGNORECASE)
    if match is None:
        raise argparse.ArgumentTypeError(f"invalid size: {text!r} (expected e.g. 123, 10K, 64M, 1G or none)")
    value = int(match[1]) * _SIZE_UNITS[match[2].upper()]
    return value or None


def _frontier(text: str) -> str:
    """``--frontier``: a ``redis://`` URL, checked before anything starts."""
    from ._frontier_redis import FrontierURL

    try:
        FrontierURL.parse(text)
        import redis  # noqa: F401  (the optional extra)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    except ImportError:
        raise argparse.ArgumentTypeError(f"{text}: needs the redis client: pip install 'loader-fetch[redis]'") from None
    return text


def _level(text: str) -> float | None:
    """``-l N``: a whole number of 0 or more, or ``inf`` (no limit: ``None``)."""
    if text.strip().lower() in ("inf", "infinite"):
        return None
    return _integer(text, 0)


def _regex(text: str) -> str:
    import re

    try:
        re.compile(text)
    except re.error as exc:
        raise argparse.ArgumentTypeError(f"invalid regular expression {text!r}: {exc}") from None
    return text


def _domains(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port: {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port: {text!r} (1 to 65535)")
    return value


#: ``--max-filesize`` not given: 1 GiB for ``fetch`` (a page's resources are whatever the
#: page names; set as fetch's own default), none for ``get`` (a file the user asked for
#: by name is theirs).
FETCH_MAX_FILESIZE = 1 << 30
DEFAULT_MAX_PAGE_SIZE = 64 << 20


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected 'Name: value', got {text!r}")
    return name.strip(), value.strip()


def _kinds(text: str) -> frozenset[str]:
    from .discovery import parse_kinds

    try:
        return parse_kinds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _viewport(text: str) -> tuple[int, int]:
    width, sep, height = text.lower().partition("x")
    if not sep or not width.strip().isdigit() or not height.strip().isdigit() \
            or int(width) < 1 or int(height) < 1:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 1280x800, got {text!r}")
    return int(width), int(height)


def _dpr(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid device pixel ratio: {text!r}") from None
    if not 0.1 <= value <= 16:
        raise argparse.ArgumentTypeError(f"device pixel ratio must be between 0.1 and 16, not {text}")
    return value


def _browser(args: argparse.Namespace) -> Any:
    """The :class:`~loader.discovery.Browser` ``fetch``'s device options describe."""
    from .discovery import Browser

    return Browser(
        viewport=getattr(args, "viewport", None) or (1280, 800),
        dpr=getattr(args, "dpr", None) or 1.0,
        scripting=not getattr(args, "noscript", False),
        all_candidates=getattr(args, "all_candidates", False),
    )


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by every subcommand that fetches (concurrency, timeouts, output modes)."""
    g = parser.add_argument_group("connection options")
    g.add_argument("-j", "--jobs", type=_positive_int, default=32, metavar="N",
                   help="concurrent requests in total (default 32)")
    g.add_argument("--per-host", type=_positive_int, default=6, metavar="N",
                   help="concurrent requests per host (default 6)")
    g.add_argument("--connect-timeout", type=_seconds, default=10.0, metavar="S",
                   help="seconds to connect, name resolution included (default 10; 'none' disables)")
    g.add_argument("--idle-timeout", type=_seconds, default=30.0, metavar="S",
                   help="seconds without data before giving up (default 30; 'none' disables)")
    g.add_argument("--timeout", type=_seconds, default=300.0, metavar="S",
                   help="total deadline per request, retries included (default 300; 'none' disables)")
    g.add_argument("--retries", type=_count, default=2, metavar="N",
                   help="retries of transient failures (default 2, so 3 attempts)")
    g.add_argument("--max-redirects", type=_count, default=10, metavar="N", help="default 10")
    g.add_argument("-H", "--header", type=_header, action="append", default=[], metavar="'NAME: VALUE'",
                   help="extra request header (repeatable)")
    g.add_argument("-A", "--user-agent", metavar="UA", help="User-Agent header")
    g.add_argument("-k", "--insecure", action="store_true", help="do not verify TLS certificates")
    g.add_argument("--no-http2", dest="http2", action="store_false", default=None,
                   help="never offer HTTP/2 (offered over TLS when the 'h2' package is installed)")
    g.add_argument("--disable-plugin", action="append", default=[], metavar="NAME",
                   help="do not load this plugin (repeatable; also LOADER_DISABLE_PLUGINS)")
    p = parser.add_argument_group("limits and policy (SIZE: 123, 10K, 64M, 1G: binary units; 0 or 'none': no limit)")
    p.add_argument("--max-page-size", type=_size, default=DEFAULT_MAX_PAGE_SIZE, metavar="SIZE",
                   help="largest document read for discovery: a page, stylesheet, menu, listing (default 64M)")
    p.add_argument("--max-filesize", type=_size, default=None, metavar="SIZE",
                   help="largest response body (default 1G for fetch, no limit for get)")
    p.add_argument("--deny-private", action="store_true",
                   help="refuse connections to loopback, private, link-local and other non-public addresses")
    p.add_argument("--allow-port", type=_port, action="append", default=[], metavar="N",
                   help="allow this port even though it is blocked by default (repeatable)")
    o = parser.add_argument_group("output options")
    o.add_argument("-q", "--quiet", action="store_true", help="no progress, only errors and the summary")
    o.add_argument("--no-progress", action="store_true", help="plain log lines even on a terminal")
    o.add_argument("--events", metavar="FILE", help="write every status event as JSON lines to FILE ('-' for stdout)")
    from ._options import add_user_options

    add_user_options(parser)  # --proxy, --user, -v, --cacert, --json, --config …


def make_loader(args: argparse.Namespace, *, per_page: int | None = None) -> Loader:
    """A Loader configured from the common options."""
    from . import Limits, Loader, Retries, Timeouts
    from ._options import loader_options

    max_body = getattr(args, "max_filesize", None)
    page_cap: dict[str, Any] = {"per_page": per_page} if per_page else {}
    limits = Limits(
        total=args.jobs,
        per_host=args.per_host,
        max_body=max_body,
        max_page=getattr(args, "max_page_size", DEFAULT_MAX_PAGE_SIZE),
        **page_cap,
        **_politeness_limits(args),
    )
    if getattr(args, "frontier", None) and getattr(args, "recursive", False):
        from ._frontier_redis import RedisFrontier

        args._frontier = RedisFrontier(args.frontier)  # its host limiter is every worker's
        limits = dataclasses.replace(limits, host_limiter=args._frontier.host_limiter)
    return Loader(
        limits=limits,
        timeouts=Timeouts(connect=args.connect_timeout, idle=args.idle_timeout, total=args.timeout),
        retries=Retries(attempts=max(1, args.retries + 1), non_idempotent=getattr(args, "retry_all", False)),
        headers=dict(args.header),
        user_agent=args.user_agent,
        **loader_options(args),  # verify (-k, --cacert), proxy, the wget/curl options' plugin
        max_redirects=args.max_redirects,
        disable=args.disable_plugin,
        http2=args.http2,
        deny_private=getattr(args, "deny_private", False),
        allow_ports=getattr(args, "allow_port", ()),
        robots=not getattr(args, "no_robots", False),
        warc=_warc_writer(args),
    )


def add_warc_options(parser: argparse.ArgumentParser) -> None:
    """``--warc-file NAME``, ``--warc-cdx``, ``--no-warc-compression`` (wget's spellings)."""
    w = parser.add_argument_group("WARC options")
    w.add_argument("--warc-file", metavar="NAME",
                   help="record every exchange as received in NAME.warc.gz (WARC/1.1)")
    w.add_argument("--warc-cdx", action="store_true", help="with --warc-file: also write NAME.cdxj, a CDXJ index")
    w.add_argument("--no-warc-compression", action="store_true",
                   help="with --warc-file: write NAME.warc, not gzip-compressed")


def _warc_writer(args: argparse.Namespace) -> Any:
    """The ``WarcWriter`` ``--warc-file`` asks for, or None (the option is fetch's and get's)."""
    name = getattr(args, "warc_file", None)
    if not name:
        return None
    from .warc import WarcWriter

    return WarcWriter(name, gzip=not args.no_warc_compression, cdx=args.warc_cdx)


#: Longest a crawl holds a host that answered 429 or 503 (``Limits.host_backoff``).
CRAWL_HOST_BACKOFF = 120.0


def _politeness_limits(args: argparse.Namespace) -> dict[str, Any]:
    """``Limits`` fields from a crawl's ``--wait``, ``--random-wait`` and ``--limit-rate``.

    Read with ``getattr``: only ``fetch -r`` has these options.  A recursive fetch also
    holds a host that answers 429 or 503 (``Limits.host_backoff``).
    """
    return {
        "host_delay": float(getattr(args, "wait", None) or 0.0),
        "random_wait": bool(getattr(args, "random_wait", False)),
        "rate": parse_rate(getattr(args, "limit_rate", None)),
        "host_backoff": CRAWL_HOST_BACKOFF if getattr(args, "recursive", False) else None,
    }


def _rate(text: str) -> int | None:
    try:
        return parse_rate(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a rate: {text!r} (bytes a second: 200k, 1.5m)") from exc


def parse_rate(value: int | float | str | None) -> int | None:
    """wget's ``--limit-rate``: bytes a second, ``k`` or ``m`` suffixed (``"200k"``); 0/None: off."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return int(value) or None
    text = value.strip().lower()
    scale = {"k": 1024, "m": 1024 * 1024}.get(text[-1:], 1)
    number = float(text[:-1] if scale != 1 else text)
    if number < 0:
        raise ValueError(f"--limit-rate must not be negative, not {value!r}")
    return int(number * scale) or None


#: Bytes of ``--events FILE`` lines gathered before each write (a seventh of the
#: syscalls of the default 8 KiB for a thousand resources; ``-`` keeps stdout's own buffering).
_EVENTS_BUFFER = 64 * 1024


class _Output:
    """Progress display and event log for one command run."""

    def __init__(self, args: argparse.Namespace, stdout: IO[str], stderr: IO[str]) -> None:
        from ._progress import Tally

        self.args = args
        self.stdout = stdout
        self.stderr = stderr
        # Completed without a transfer: with --exists skip or -c, a file already there.
        skipping = getattr(args, "exists", None) == "skip" or getattr(args, "resume", False)
        self.tally = Tally(skipped_as="skipped" if skipping else "reused")
        args._tally = self.tally  # the page lines count from it, so they agree with the summary
        self.stack = contextlib.ExitStack()
        self.plugins: list[tuple[str, object]] = []
        self.display: LiveProgress | PlainProgress | None = None

    def __enter__(self) -> _Output:
        from ._progress import EventLog, LiveProgress, PlainProgress

        args = self.args
        if getattr(args, "events", None):
            if args.events == "-":
                stream = self.stdout
            else:
                try:
                    stream = self.stack.enter_context(_open_event_log(args.events))
                except OSError as exc:  # checked before, but the file system may have changed since
                    self.stack.close()
                    raise _UnusableLocation(
                        f"cannot write the event log {printable(args.events)}: {printable(exc.strerror or str(exc))}"
                    ) from None
            self.plugins.append(("cli-events", EventLog(stream)))
        if args.quiet or getattr(args, "list", False):
            pass  # nothing shown while files arrive: no observer, no event built (see page_count)
        elif self.stderr.isatty() and not args.no_progress:
            live = self.display = self.stack.enter_context(LiveProgress(self.tally))
            self.plugins.append(("cli-progress", live))
            # Messages go through the live console so they print above the bars.
            args._stderr = _ConsoleWriter(live.console)
            self.stack.callback(setattr, args, "_stderr", self.stderr)
        else:
            self.display = PlainProgress(self.tally, self.stderr)
            self.plugins.append(("cli-progress", self.display))
        return self

    def finish(self, *, interrupted: bool) -> None:
        """Give the display its final state (complete, or interrupted) before it stops."""
        if self.display is not None:
            self.display.finish(interrupted=interrupted)
            self.display = None

    def __exit__(self, *exc_info: Any) -> None:
        if exc_info[0] is not None:
            self.finish(interrupted=True)
        self.stack.close()  # closes (so flushes) the event log on every way out


# -- what a person reads --------------------------------------------------------------


def printable(text: str) -> str:
    """:func:`loader._display.printable`, imported on first use (``--help`` never needs it)."""
    from ._display import printable as escape

    return escape(text)


def shown_url(url: str) -> str:
    """:func:`loader._display.shown_url`: password redacted, controls and bidi escaped."""
    from ._display import shown_url as show

    return show(url)


# -- output locations ------------------------------------------------------------------


class _UnusableLocation(Exception):
    """An output path the command could not write: a usage error, reported before any request."""


def _directory_problem(directory: Path, *, may_create: bool) -> str | None:
    """Why files cannot be created in ``directory``, or ``None``.

    With ``may_create`` a missing directory is fine when its nearest existing
    ancestor is a writable directory (the fetch makes the rest).
    """
    directory = directory.absolute()  # "." says nothing in a message
    existing = directory
    for existing in (directory, *directory.parents):
        try:
            is_directory = existing.is_dir()
            if is_directory or existing.exists():  # under a file neither is true: walk up to it
                break
        except OSError as exc:  # e.g. a parent we may not search
            return f"{printable(str(existing))}: {printable(exc.strerror or str(exc))}"
    if not is_directory:
        if existing == directory:
            return "it is not a directory"
        return f"{printable(str(existing))} is not a directory"
    if existing != directory and not may_create:
        return f"{printable(str(directory))} does not exist"
    if not os.access(existing, os.W_OK | os.X_OK):
        with contextlib.suppress(OSError, AttributeError):
            if os.statvfs(existing).f_flag & os.ST_RDONLY:
                return f"{printable(str(existing))} is on a read-only file system"
        return f"{printable(str(existing))} is not writable (permission denied)"
    return None


def _file_problem(path: Path) -> str | None:
    """Why the file ``path`` cannot be created or replaced (or, a device or a pipe, written), or ``None``."""
    try:
        if path.is_dir():
            return "it is a directory"
    except OSError as exc:
        return printable(exc.strerror or str(exc))
    if _is_special_file(str(path)):
        return None if os.access(path, os.W_OK) else "it is not writable (permission denied)"
    return _directory_problem(path.parent, may_create=False)


def _location_problem(args: argparse.Namespace) -> str | None:
    """Why an output location of ``fetch`` / ``get`` is unusable, checked before any request.

    Otherwise the run would fetch everything and then fail each write, ending in
    a Python traceback (reported as a partial failure).
    """
    command = getattr(args, "command", None)
    problem: str | None
    if command == "fetch" and not getattr(args, "list", False):
        problem = _directory_problem(Path(args.output), may_create=True)
        if problem is not None:
            return f"cannot save to the output directory {printable(args.output)}: {problem}"
    elif command == "get" and args.output != "-":
        target = Path(_get_target(args.url, args.output))
        problem = _file_problem(target)
        if problem is not None:
            return f"cannot write {printable(str(target))}: {problem}"
    events = getattr(args, "events", None)
    if events and events != "-":
        problem = _file_problem(Path(events))
        if problem is None and os.path.exists(events) and not os.access(events, os.W_OK):
            problem = "it is not writable (permission denied)"
        if problem is not None:
            return f"cannot write the event log {printable(events)}: {problem}"
    warc = getattr(args, "warc_file", None)
    if warc:
        from .warc import warc_name

        target = Path(warc_name(warc, not args.no_warc_compression))
        problem = _file_problem(target)
        if problem is not None:
            return f"cannot write the WARC file {printable(str(target))}: {problem}"
    return None


async def run_with_loader(args: argparse.Namespace, coro_fn: Command, out: _Output) -> int:
    """Create the Loader, register the display observers, run ``coro_fn(args, loader)``.

    A stop signal (see :func:`console`) cancels the run: every transfer ends as
    cancelled, its sink aborts, and :data:`EXIT_INTERRUPTED` is returned.
    """
    import anyio

    code = EXIT_INTERRUPTED
    async with anyio.create_task_group() as group:
        await group.start(_watch_stop_signals, group.cancel_scope)
        loader = make_loader(args, per_page=getattr(args, "per_page", None))
        for name, plugin in out.plugins:
            loader.register(plugin, name=name)
        async with loader:
            if args.command == "fetch" and not _stopping():
                _warm_up(loader, args.urls)
            _started()
            # Loading the loader and the warm-up import modules: a Ctrl-C meanwhile is
            # noted at once, and no request goes out after it.
            if not _stopping():
                code = int(await coro_fn(args, loader))
        group.cancel_scope.cancel()  # the run is over: stop watching for signals
    return code


def _print_failures(results: Sequence[Result], stderr: IO[str]) -> None:
    for result in results:
        if not result.ok:
            _print_failure(result, stderr)


def _print_failure(result: Result, stderr: IO[str]) -> None:
    """One line ``error: URL: cause``, safe for a terminal (see ``failure_text``)."""
    from ._progress import failure_text

    stderr.write(f"error: {failure_text(result.url, result.error)}\n")


# -- fetch -----------------------------------------------------------------------------


def _warm_up(loader: Loader, urls: Sequence[str]) -> None:
    """Load what the pages will need (protocol stacks, the HTML parser) before the first request.

    Start-up work either way; done here, a page's timings and events measure transfers.
    """
    import importlib
    from urllib.parse import urlsplit

    importlib.import_module("loader.discovery.html")
    importlib.import_module("loader.discovery.discover")
    for url in urls:
        try:
            warm = getattr(loader.handler(urlsplit(url).scheme), "warm_up", None)
            if warm is not None:
                warm()
        except Exception:  # noqa: S112 - the fetch itself reports a bad URL or scheme, naming it
            continue


def page_count(args: argparse.Namespace, page: PageResult) -> Count:
    """What a page's line says: its count in the run's tally, which the summary adds up;
    with ``-q`` (no tally listens, nothing is summed), the count of its results."""
    from ._progress import Count

    if args.quiet:
        return Count.of_results((page.document, *page.resources))
    return args._tally.pages.get(page.document.request_id) or Count()


async def _cmd_fetch(args: argparse.Namespace, loader: Loader) -> int:
    from ._progress import page_line

    if getattr(args, "recursive", False):
        try:
            return await _cmd_crawl(args, loader)
        except Exception as exc:
            if getattr(args, "_frontier", None) is None:
                raise
            from ._frontier_redis import frontier_failure
            from ._urls import redact_url

            if (failure := frontier_failure(exc)) is None:
                raise
            # Another worker may go on: this one stops, its leased pages go back when their leases end.
            args._stderr.write(f"loader: {printable(redact_url(args.frontier))}: the shared frontier failed: "
                               f"{printable(str(failure) or type(failure).__name__)}\n")
            return EXIT_FAILED
    kinds = args.kinds
    if "meta" not in kinds and args.meta_images:
        kinds = kinds | {"meta"}
    output = Path(args.output)
    worst = EXIT_OK
    recording = getattr(args, "har", None) or getattr(args, "report", None)
    if recording:
        from .har import HarCollector

        collector = HarCollector()
        loader.register(collector, name="har")
        pages = []
    for url in args.urls:
        page = await loader.fetch_page(
            url,
            output=None if args.list else output,
            kinds=kinds,
            same_host=args.same_host,
            convert_links=args.convert_links,
            exists=args.exists,
            list_only=args.list,
            resume=getattr(args, "resume", False),  # the demo's own arguments have no -c
            browser=_browser(args),
        )
        if isinstance(getattr(args, "_pages", None), list):
            args._pages.append(page)
        if recording:
            pages.append(page)
        if args.list:
            if not page.document.ok:
                _print_failure(page.document, args._stderr)
                worst = max(worst, EXIT_FAILED)
                continue
            explain = getattr(args, "explain", False)
            for item in page.found:
                why = f"\t{printable(item.why)}" if explain and item.why else ""
                args._stdout.write(f"{item.kind}\t{shown_url(item.url)}\t{printable(item.provenance())}{why}\n")
            if explain:
                for item in page.dropped:
                    args._stdout.write(f"skipped\t{shown_url(item.url)}\t{printable(item.provenance())}"
                                       f"\t{printable(item.why)}\n")
            if page.skipped:
                args._stderr.write(f"note: {page.skipped} more resources over the per-page cap were not listed\n")
            continue
        failures = page.failed
        _print_failures(failures, args._stderr)
        for warning in page.warnings:
            args._stderr.write(f"warning: {printable(str(warning))}\n")
        if not page.document.ok:
            worst = max(worst, EXIT_FAILED)
            continue
        args._stderr.write(page_line(url, page.path, page_count(args, page), args._tally.skipped_as) + "\n")
        if failures:
            worst = max(worst, EXIT_PARTIAL)
    if recording:
        from .har import save_load

        if not save_load(collector, pages, args.har, args.report, args._stderr):
            worst = max(worst, EXIT_FAILED)
    return worst


async def _cmd_crawl(args: argparse.Namespace, loader: Loader) -> int:
    """``loader fetch -r``: :meth:`Loader.crawl`, each page saved with its requisites."""
    from ._crawl import link_saved_pages
    from ._progress import page_line
    from ._urls import redact_url

    kinds = args.kinds | {"meta"} if args.meta_images else args.kinds
    output = Path(args.output)
    exists = args.exists
    if args.state is not None and os.path.exists(args.state) and exists == "overwrite":
        exists = "skip"  # a resumed crawl: a file under its final name is complete
    frontier = getattr(args, "_frontier", None)  # --frontier: shared with other workers
    if frontier is not None:
        exists = "skip" if exists == "overwrite" else exists  # a page retried after a lost worker
    worst = EXIT_OK
    pages = resources = failures = size = 0
    saved: dict[str, Path] | None = {} if args.convert_links else None  # for links between pages
    async with loader.crawl(
        args.urls, level=args.level, span_hosts=args.span_hosts, domains=args.domains,
        accept=args.accept_regex, reject=args.reject_regex, no_parent=args.no_parent,
        max_pages=args.max_pages, state=args.state, output=output, kinds=kinds,
        same_host=args.same_host, convert_links=args.convert_links, exists=exists,
        resume=getattr(args, "resume", False), browser=_browser(args),
        politeness=loader.politeness if frontier is None else frontier.politeness(loader.politeness),
        frontier=frontier,
    ) as crawl:
        tally = args._tally
        # The live display's overall line leads with the crawl's own progress.
        tally.heading = lambda: f"pages {pages} done, {crawl.queued} queued"
        async for page in crawl:
            pages += 1
            resources += len(page.resources)
            size += sum(r.size for r in (page.document, *page.resources) if r.ok)
            failed = page.failed
            failures += len(failed)
            _print_failures(failed, args._stderr)
            for warning in page.warnings:
                args._stderr.write(f"warning: {printable(str(warning))}\n")
            page_id = page.document.request_id
            if not page.document.ok:
                tally.pages.pop(page_id, None)  # a long crawl keeps no per-page tally
                worst = max(worst, EXIT_PARTIAL)
                continue
            if not args.quiet:  # -q: a crawl's errors and its summary only, not a line a page
                progress = f"[{pages} done, {crawl.queued} queued] "
                args._stderr.write(progress + page_line(page.url, page.path, page_count(args, page), tally.skipped_as) + "\n")
            tally.pages.pop(page_id, None)  # printed: a long crawl keeps no per-page tally
            if failed:
                worst = max(worst, EXIT_PARTIAL)
            if saved is not None and page.path is not None:
                saved[page.document.url] = saved[page.document.final_url] = page.path
        queued, denied, resumed = crawl.queued, crawl.denied, crawl.resumed
        tally.heading = lambda: f"pages {pages} done, {queued} queued"  # the crawl is closed
    relinked = link_saved_pages(saved, output) if saved else 0
    if pages == 0 and not resumed:
        worst = EXIT_FAILED  # not one start URL was allowed
    args._stderr.write(
        f"crawled {pages} pages, {resources} resources, {size} bytes, {failures} failures"
        + (f", {queued} still queued" if queued else "")
        + (f", {relinked} pages relinked" if saved else "")
        + (f" ({resumed} done by earlier runs of {printable(args.state or redact_url(args.frontier))})"
           if resumed else "") + "\n"
    )
    summary = getattr(args, "_summary", None)
    if summary is not None:
        summary.extra["crawl"] = {"pages": pages, "resources": resources, "bytes": size,
                                  "failures": failures, "queued": queued, "denied": denied}
    return worst


# -- get -------------------------------------------------------------------------------


async def _cmd_get(args: argparse.Namespace, loader: Loader) -> int:
    if getattr(args, "timestamped", False):
        return await _timestamped_get(args, loader)
    url = args.url
    from ._upload import request_body

    if (body := request_body(args)) is None:  # method, content, headers of -X, -d, -T (-o - by default)
        return EXIT_USAGE
    target = args.output
    if target == "-":
        result = await _fetch_into_stream(loader, url, args._stdout_bytes, **body)
    elif target is not None and _is_special_file(target):
        # A device or a pipe (-o /dev/null, -o a FIFO) is written into as a stream:
        # the atomic rename of a regular download would replace it with a plain file.
        try:
            stream = await _open_special_file(target)
        except OSError as exc:
            args._stderr.write(f"error: cannot write {printable(target)}: {printable(exc.strerror or str(exc))}\n")
            return EXIT_USAGE
        with stream:
            result = await _fetch_into_stream(loader, url, stream, **body)
    else:
        target = _get_target(url, target)
        result = await loader.fetch(url, to=Path(target), resume=args.resume, exists=args.exists, **body)
    if not result.ok:
        _print_failure(result, args._stderr)
        return EXIT_FAILED
    if target != "-" and not args.quiet:
        where = printable(str(result.path if result.path is not None else target))
        if result.completed_synchronously and not url.startswith("data:"):
            # --exists skip (or -c) found the file complete: no byte was transferred
            args._stderr.write(f"{shown_url(url)}: skipped, {where} is already there ({result.size} bytes)\n")
        else:
            args._stderr.write(f"{shown_url(url)}: {result.size} bytes saved to {where}\n")
    return EXIT_OK


# -- -N: timestamping ------------------------------------------------------------------


def _http_date(seconds: float) -> str:
    import email.utils

    return email.utils.formatdate(seconds, usegmt=True)


def _parse_http_date(value: str | None) -> float | None:
    if not value:
        return None
    import email.utils

    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


async def _timestamped_get(args: argparse.Namespace, loader: Loader) -> int:
    """``get -N``: the file is replaced only when the server has a newer one (wget's ``-N``)."""
    from ._usage import get_target

    url = args.url
    target = Path(get_target(url, args.output))
    if _is_special_file(str(target)):
        args._stderr.write(f"error: -N needs a regular file to compare with: {printable(str(target))} is not one\n")
        return EXIT_USAGE
    headers: dict[str, str] = {}
    try:
        headers["If-Modified-Since"] = _http_date(target.stat().st_mtime)
    except FileNotFoundError:
        pass
    # Fetched beside the target, so a 304's empty body never replaces the file.
    fresh = target.with_name(f".{target.name}.loader-new")
    result = await loader.fetch(url, to=fresh, headers=headers)
    if not result.ok:
        _print_failure(result, args._stderr)
        return EXIT_FAILED
    if result.status == 304:
        fresh.unlink(missing_ok=True)
        if not args.quiet:
            args._stderr.write(f"{shown_url(url)}: not modified; {printable(str(target))} left as it is\n")
        return EXIT_OK
    os.replace(fresh, target)
    modified = next((v for k, v in result.headers.items() if k.lower() == "last-modified"), None)
    stamp = _parse_http_date(modified)
    if stamp is not None:
        os.utime(target, (stamp, stamp))
    if not args.quiet:
        args._stderr.write(f"{shown_url(url)}: {result.size} bytes saved to {printable(str(target))}\n")
    return EXIT_OK


async def _fetch_into_stream(loader: Loader, url: str, stream: IO[bytes] | _TextAsBytes, **body: Any) -> Result:
    def write(chunk: bytes) -> None:
        stream.write(chunk)

    try:
        return await loader.fetch(url, to=write, **body)
    finally:
        stream.flush()


def _open_writer(path: str) -> int | None:
    """A blocking write descriptor for a device or FIFO; ``None`` while a FIFO has no reader.

    A plain blocking open of a FIFO waits for its reader inside the system call,
    where no signal can stop it (and a worker thread left in it keeps the process
    from exiting), so the open is non-blocking and the caller waits between tries.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            return None
        raise
    os.set_blocking(fd, True)
    return fd


#: Seconds between tries to open a FIFO that has no reader yet.
_READER_POLL = 0.05


async def _open_special_file(path: str) -> IO[bytes]:
    """Open a device or a FIFO for writing, waiting (cancellably) for a FIFO's reader."""
    import anyio

    while (fd := _open_writer(path)) is None:
        await anyio.sleep(_READER_POLL)
    return open(fd, "wb", buffering=0)


class _StopRequested(Exception):
    """A stop signal came while the command waited before its run (see :func:`_open_event_log`)."""


def _open_event_log(path: str) -> IO[str]:
    """The ``--events`` file; a FIFO's reader is waited for until one comes or a stop signal."""
    if not _is_special_file(path):
        return open(path, "w", buffering=_EVENTS_BUFFER)
    import time

    while (fd := _open_writer(path)) is None:
        if _stopping():
            raise _StopRequested
        time.sleep(_READER_POLL)
    return open(fd, "w", buffering=_EVENTS_BUFFER)


def _is_special_file(path: str) -> bool:
    """An existing file that is neither regular nor a directory: a device, a FIFO, a socket."""
    import stat

    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _get_target(url: str, output: str | None) -> str:
    """:func:`loader._usage.get_target`: ``-o``, a file in the ``-o`` directory, or the URL's name."""
    from ._usage import get_target

    return get_target(url, output)


# -- plugins ---------------------------------------------------------------------------


def _cmd_plugins(args: argparse.Namespace) -> int:
    from ._plugins import describe_plugins, disabled_names, make_plugin_manager

    for line in describe_plugins(make_plugin_manager(), disabled_names()):
        args._stdout.write(line + "\n")
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo  # imports the demo servers only when asked for

    return run_demo(args, lambda fetch_args: run_async(fetch_args, _cmd_fetch, args._stdout, args._stderr))


# -- parser ----------------------------------------------------------------------------


class _CommandParser(argparse.ArgumentParser):
    """A subcommand's parser: an option it does not know is its usage error, not the top level's.

    argparse hands a subcommand's leftovers back up, and the top-level parser then
    printed ``usage: loader [-h] [--version] COMMAND ...``, which names no option.
    """

    # typeshed's overloads also return a caller's Namespace subclass typed as such;
    # nothing here passes one, so the plain signature is kept.
    def parse_known_args(  # type: ignore[override]
            self, args: Sequence[str] | None = None,
            namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


#: The built-in commands :func:`build_parser` can build alone (``only``).
_BUILT_IN = ("fetch", "get", "plugins", "demo")


def build_parser(
    pm: pluggy.PluginManager | None = None, *, status: bool = True, only: str | None = None
) -> argparse.ArgumentParser:
    """The full argument parser, with plugin subcommands when ``pm`` is given.

    ``status=False`` leaves ``crawl-status`` out (argv cannot reach it); its parser's
    module is light, and the frontiers it uses load only when it runs.  ``only``, one
    of the built-in commands: that command's parser alone (argv naming it reaches no
    sibling; building them all took ~10 ms of every ``fetch``'s start).
    """
    parser = argparse.ArgumentParser(
        prog="loader",
        description="Fetch pages with their images and sounds over HTTP, FTP and Gopher, concurrently.",
        epilog="Exit codes: 0 ok, 1 some resources failed, 2 bad usage, 3 failed, "
               "130 interrupted (143 SIGTERM, 129 SIGHUP).",
    )
    parser.add_argument("--version", action="version", version="loader 0.1.0")
    # A command's own parser reports its unknown options, with its own usage line.
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_CommandParser)

    if only in (None, "fetch"):
        _add_fetch(sub)
    if only in (None, "get"):
        _add_get(sub)
    if only in (None, "plugins"):
        plugins = sub.add_parser("plugins", help="installed plugins, their schemes and hooks")
        plugins.set_defaults(sync=_cmd_plugins)
    if only in (None, "demo"):
        demo = sub.add_parser("demo", help="serve the bundled demo site locally and fetch it")
        demo.add_argument("-o", "--output", default="demo-output", metavar="DIR",
                          help="directory for the fetched copy (default demo-output)")
        demo.add_argument("--serve", action="store_true", help="only serve the demo until Ctrl-C; print its URLs")
        add_common_options(demo)
        demo.set_defaults(sync=_cmd_demo)
    if only is not None:
        return parser

    from ._completion import add_completion_command

    if status:
        from ._crawl_status import add_status_command

        add_status_command(sub)
    add_completion_command(sub, parser)
    if pm is not None:
        _add_plugin_commands(pm, sub)
    return parser


def _config_file_used(argv: Sequence[str]) -> bool:
    """Whether a config file applies to ``argv``: its tables are checked against every
    built-in command's options, so then every command's parser is built."""
    from ._config import config_path

    path, named = config_path(argv)
    return path is not None and (named or path.exists())


def _add_fetch(sub: Any) -> None:
    fetch = sub.add_parser("fetch", help="a page plus its images and sounds (like wget -p)",
                           description="Fetch each page and, concurrently, the resources it uses.")
    fetch.add_argument("urls", nargs="*", metavar="URL")  # or -i FILE: checked after parsing
    fetch.add_argument("-o", "--output", default=".", metavar="DIR", help="output directory (default .)")
    fetch.add_argument("--list", action="store_true", help="discover only: print each resource and why it was found")
    fetch.add_argument("--kinds", type=_kinds, default="image,sound", metavar="KINDS",
                       help="comma list of image,sound,style,script,font,video,frame,meta,icon or 'all'; "
                            "plural names work too (default image,sound)")
    fetch.add_argument("--meta-images", action="store_true", help="also og:image-style images from <meta>")
    fetch.add_argument("--viewport", type=_viewport, default=(1280, 800), metavar="WxH",
                       help="the window discovery imitates, for srcset, sizes and @media (default 1280x800)")
    fetch.add_argument("--dpr", type=_dpr, default=1.0, metavar="N",
                       help="device pixel ratio, for srcset and resolution queries (default 1)")
    fetch.add_argument("--all-candidates", action="store_true",
                       help="every srcset/<picture> candidate, not just the one a browser picks")
    fetch.add_argument("--noscript", action="store_true",
                       help="load <noscript> content, as a browser with scripting off does")
    fetch.add_argument("--explain", action="store_true",
                       help="with --list: say why each resource was chosen and list what was skipped")
    fetch.add_argument("--same-host", action="store_true", help="skip resources on other hosts")
    fetch.add_argument("--convert-links", action="store_true",
                       help="rewrite the saved page to use the local copies (with -r: of other pages too)")
    fetch.add_argument("--exists", choices=["overwrite", "skip", "unique"], default="overwrite",
                       help="what to do with files already there (default overwrite)")
    fetch.add_argument("--max-resources", dest="per_page", type=_positive_int, metavar="N",
                       help="cap on resources per page (default 1000)")
    fetch.add_argument("-c", "--continue", dest="resume", action="store_true",
                       help="resume each resource's partial file (NAME.part) and skip complete ones")
    crawl = fetch.add_argument_group("recursive fetching (wget -r)")
    crawl.add_argument("-r", "--recursive", action="store_true",
                       help="follow each page's links, breadth-first, saving every page with its requisites")
    crawl.add_argument("-l", "--level", type=_level, default=5, metavar="N",
                       help="with -r: how many links deep (default 5; 0: the pages given; inf: no limit)")
    # wget's -H: here -H is --header (curl's), so only the long spelling.
    crawl.add_argument("--span-hosts", action="store_true", help="with -r: follow links to other hosts")
    crawl.add_argument("-D", "--domains", type=_domains, metavar="LIST",
                       help="with --span-hosts: only these domains (comma list; a domain takes its subdomains)")
    crawl.add_argument("--accept-regex", type=_regex, metavar="REGEX", help="with -r: follow only URLs matching REGEX")
    crawl.add_argument("--reject-regex", type=_regex, metavar="REGEX", help="with -r: never follow URLs matching REGEX")
    crawl.add_argument("-np", "--no-parent", action="store_true",
                       help="with -r: never go above the start URL's directory")
    crawl.add_argument("--max-pages", type=_positive_int, metavar="N", help="with -r: stop after N pages")
    state = crawl.add_mutually_exclusive_group()
    state.add_argument("--state", metavar="FILE",
                       help="with -r: keep the crawl's progress in FILE (SQLite); run again to resume")
    state.add_argument("--frontier", type=_frontier, metavar="URL",
                       help="with -r: share the crawl through Redis (redis://HOST:PORT/DB[?crawl=NAME]) "
                            "with every process started with the same URL")
    crawl.add_argument("--no-robots", action="store_true",
                       help="with -r: do not read or honour robots.txt (honoured by default)")
    crawl.add_argument("--wait", type=float, metavar="SECONDS",
                       help="with -r: wait SECONDS between two pages of one host")
    crawl.add_argument("--random-wait", action="store_true",
                       help="with -r: vary each --wait (or Crawl-delay) by 0.5-1.5x")
    crawl.add_argument("--limit-rate", type=_rate, metavar="RATE",
                       help="with -r: at most RATE bytes a second in all (200k, 1.5m)")
    fetch.add_argument("--har", metavar="FILE", help="write the load as a HAR 1.2 log to FILE")
    fetch.add_argument("--report", metavar="FILE", help="write the load's waterfall as one HTML file to FILE")
    add_common_options(fetch)
    add_warc_options(fetch)
    fetch.set_defaults(run=_cmd_fetch, max_filesize=FETCH_MAX_FILESIZE)


def _add_get(sub: Any) -> None:
    get = sub.add_parser("get", help="one resource, any scheme", description="Fetch one resource.")
    get.add_argument("url", metavar="URL")
    get.add_argument("-o", "--output", metavar="FILE", help="file to write, '-' for stdout (default: name from the URL)")
    get.add_argument("-c", "--continue", dest="resume", action="store_true",
                     help="resume a partial file (NAME.part, kept when a -c run is interrupted)")
    get.add_argument("--exists", choices=["overwrite", "skip", "unique"], default="overwrite")
    add_common_options(get)
    add_warc_options(get)
    from ._upload import add_body_options  # -X, -d, --data-binary, -T: curl's request options

    add_body_options(get)
    get.set_defaults(run=_cmd_get)


def _add_plugin_commands(pm: pluggy.PluginManager, sub: Any) -> None:
    """Let each plugin add its subcommands; one that raises is skipped with a warning line.

    Each implementation is called through pluggy's public ``subset_hook_caller`` (the
    others removed), so one broken plugin cannot take ``--help`` down with it.
    """
    impls = pm.hook.loader_add_commands.get_hookimpls()
    for impl in impls:
        others = [other.plugin for other in impls if other.plugin is not impl.plugin]
        try:
            pm.subset_hook_caller("loader_add_commands", remove_plugins=others)(subparsers=sub)
        except Exception as exc:
            import logging

            from ._display import printable

            cause = printable(f"{type(exc).__name__}: {exc}")
            logging.getLogger("loader.plugins").warning(
                "warning: plugin %r skipped, its commands failed: %s", impl.plugin_name, cause)


def main(argv: Sequence[str] | None = None, *, stdout: IO[str] | None = None, stderr: IO[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script exits with it)."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    argv = list(sys.argv[1:] if argv is None else argv)
    pm = None
    if not argv or argv[0] not in ("fetch", "get", "plugins", "demo", "crawl-status", "--version"):
        from ._plugins import make_plugin_manager

        pm = make_plugin_manager()  # plugin subcommands (ftp, gopher …) and the full help
    # A known command's own parser is all that argv can reach (no sibling is listed).
    only = argv[0] if argv and argv[0] in _BUILT_IN and not _config_file_used(argv) else None
    parser = build_parser(pm, status=not argv or argv[0] not in (*_BUILT_IN, "--version"), only=only)
    from ._options import parse_args

    try:
        # Usage errors and --help go to the streams main() was given, as everything else does.
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            args = parse_args(parser, argv)  # with the config file's defaults and -i
    except SystemExit as exc:
        return int(exc.code or 0)
    args._stdout = stdout
    args._stderr = stderr
    args._stdout_bytes = getattr(stdout, "buffer", None) or _TextAsBytes(stdout)
    if getattr(args, "sync", None):
        signum = _take_stop()
        if signum is not None:
            return _report_stop(signum, args, stderr)
        with _replaced_handlers_back():
            return int(args.sync(args))
    if not getattr(args, "run", None):
        parser.print_help(stderr)
        return EXIT_USAGE
    return run_async(args, args.run, stdout, stderr)


#: Set by :func:`console` for ``fetch`` and ``get``: the collector is off until :func:`_started`.
_collector_paused = False


def _started() -> None:
    """The command's modules are loaded: turn the cycle collector back on, without them.

    Loading modules makes objects, not garbage, yet CPython ran ~60 collections
    (~17 ms) before a 110-file fetch was over, and a full one walks every module
    object (~30 ms when it comes).  So :func:`console` pauses the collector while
    the command starts, and here everything loaded so far is frozen out of its
    walks (``gc.freeze``) before it resumes for the transfers' own garbage.
    """
    global _collector_paused
    if _collector_paused:
        _collector_paused = False
        gc.freeze()
        gc.enable()


def console() -> None:
    """The ``loader`` command: :func:`main`, then an exit without the interpreter's teardown.

    When ``main`` returns, the command is over: the page is saved, every file it
    opened is closed, the event loop and its threads are shut down.  CPython
    would still free every module and object one by one, about 40 ms a run,
    so the standard streams are flushed and the process ends at once, from the
    exit hook :func:`_quick_exit` (registered when this module is imported, so
    ``atexit`` runs every hook registered after that first, and the interpreter
    has already joined non-daemon threads).  Hooks registered before this module
    was imported are the price: they are skipped.  The normal exit is kept when a
    stream cannot be flushed (its error is reported as usual).  For
    ``fetch`` and ``get`` the cycle collector is also paused while the command
    starts (see :func:`_started`).

    Its first instruction takes over SIGINT, SIGTERM and SIGHUP (see the module
    docstring): a signal at any later moment ends the command with ``128 + signum``.
    """
    global _collector_paused
    _replaced_handlers.update((sig, h) for sig, h in _install_stop_handlers().items() if h is not _note_stop)

    if sys.argv[1:2] in (["fetch"], ["get"]) and gc.isenabled():
        _collector_paused = True
        gc.disable()
    try:
        code = main()
    finally:
        _started()
    signum = _take_stop()
    if signum is not None and code < 128:  # came after the run's last look: still a stop
        code = _report_stop(signum, None, sys.stderr)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        sys.exit(code)
    global _quick_exit_code
    _quick_exit_code = code
    sys.exit(code)


_quick_exit_code: int | None = None  # set by console once the streams are flushed


def _quick_exit() -> None:
    """The last exit hook: end the process without freeing every object (see :func:`console`)."""
    if _quick_exit_code is not None:
        os._exit(_quick_exit_code)


atexit.register(_quick_exit)


def run_async(args: argparse.Namespace, coro_fn: Command, stdout: IO[str], stderr: IO[str]) -> int:
    """Run a subcommand's coroutine on anyio with the display set up.

    The output locations are checked first (a usage error, nothing requested);
    a stop signal gives ``128 + signum`` (Ctrl-C: 130) with the event log flushed.
    """
    signum = _take_stop()
    if signum is not None:
        return _report_stop(signum, args, stderr)
    from ._usage import UsageProblem, check_usage

    try:
        check_usage(args)  # stdout shared by two outputs; a URL's scheme (http:// when none)
    except UsageProblem as exc:
        stderr.write(f"error: {exc}\n")
        return EXIT_USAGE
    problem = _location_problem(args)
    if problem is not None:
        stderr.write(f"error: {problem}\n")
        return EXIT_USAGE

    import anyio

    from ._loop import backend_options

    try:
        with _Output(args, stdout, stderr) as out:
            code = anyio.run(run_with_loader, args, coro_fn, out, backend_options=backend_options())
            signum = _take_stop()
            out.finish(interrupted=signum is not None or code == EXIT_INTERRUPTED)
        # Written once the live display has stopped: printed under it, its next frame erased it.
        if signum is None and not args.quiet and not getattr(args, "list", False) and args.command == "fetch":
            stderr.write(out.tally.summary() + "\n")
    except _UnusableLocation as exc:
        stderr.write(f"error: {exc}\n")
        return EXIT_USAGE
    except _StopRequested:
        signum = _take_stop()
    except KeyboardInterrupt:  # main() run in-process, without console()'s handlers
        signum = signal.SIGINT
    if signum is not None:
        return _report_stop(signum, args, stderr)
    return code


# -- stop signals ----------------------------------------------------------------------

#: The first stop signal received and not acted on yet (signals are process-wide).
_pending_stop: int | None = None

#: The handlers :func:`console` replaced; plain synchronous subcommands run with them.
_replaced_handlers: dict[signal.Signals, SignalHandler] = {}


#: Wakes the running loop's signal watcher (set while one runs; safe in a signal handler).
_wake_watcher: Callable[[], None] | None = None


def _note_stop(signum: int, frame: FrameType | None) -> None:
    """Signal handler: remember the signal; the command acts on it at its next step.

    Raising from here, as Python's own SIGINT handler does, lands in whatever runs at
    that instant: an import half done printed a traceback, and an exception caught on
    its way once let a fetch run on to exit 0.
    """
    global _pending_stop
    if _pending_stop is None:
        _pending_stop = signum
    wake = _wake_watcher
    if wake is not None:
        wake()


def _take_stop() -> int | None:
    """The pending stop signal, if any, now acted on."""
    global _pending_stop
    signum, _pending_stop = _pending_stop, None
    return signum


def _report_stop(signum: int, args: argparse.Namespace | None, stderr: IO[str]) -> int:
    name = signal.Signals(signum).name
    if getattr(args, "resume", False):
        stderr.write(f"interrupted by {name}; the partial data is kept for -c\n")
    else:
        stderr.write(f"interrupted by {name}; partial files were removed\n")
    return 128 + signum


def _stoppable_signals() -> list[signal.Signals]:
    # A signal ignored when the command started stays ignored: ``nohup`` (SIGHUP) and
    # a shell's background job (SIGINT) ask for exactly that.
    return [sig for sig in _STOP_SIGNALS if signal.getsignal(sig) is not signal.SIG_IGN]


def _install_stop_handlers() -> dict[signal.Signals, SignalHandler]:
    """Note stop signals from now on (main thread only); returns the handlers replaced."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.signal(sig, _note_stop) for sig in _stoppable_signals()}


def _restore_handlers(handlers: dict[signal.Signals, SignalHandler]) -> None:
    for sig, handler in handlers.items():
        if handler is not None:  # None: set outside Python, nothing we could put back
            signal.signal(sig, handler)


@contextlib.contextmanager
def _replaced_handlers_back() -> Iterator[None]:
    """Run a synchronous subcommand with the handlers it expects (Ctrl-C raising)."""
    if not _replaced_handlers or threading.current_thread() is not threading.main_thread():
        yield
        return
    ours = {sig: signal.getsignal(sig) for sig in _replaced_handlers}
    _restore_handlers(_replaced_handlers)
    try:
        yield
    finally:
        _restore_handlers(ours)


async def _watch_stop_signals(
        scope: anyio.CancelScope, *, task_status: anyio.abc.TaskStatus[None]) -> None:
    """Cancel ``scope`` at the first stop signal, or at once if one came before the loop ran.

    The handler stays :func:`_note_stop`, so the signal is known the instant it is
    handled (the run's own checkpoints see it), and it wakes this task through the
    loop's signal-safe entry: ``call_soon_threadsafe`` (what asyncio's own Ctrl-C
    handling uses) or trio's ``run_sync_soon``.
    """
    import anyio
    import sniffio

    global _wake_watcher
    if threading.current_thread() is not threading.main_thread():
        task_status.started()  # signals go to the main thread only: nothing to watch here
        return
    stopped = anyio.Event()
    soon: Callable[[Callable[[], object]], object]
    if sniffio.current_async_library() == "trio":
        import trio

        soon = trio.lowlevel.current_trio_token().run_sync_soon
    else:
        import asyncio

        soon = asyncio.get_running_loop().call_soon_threadsafe

    def wake() -> None:
        soon(stopped.set)

    _wake_watcher = wake
    replaced = _install_stop_handlers()  # already ours under console(); main() in-process: now
    try:
        task_status.started()
        if _pending_stop is None:
            await stopped.wait()
        scope.cancel()
    finally:
        _wake_watcher = None
        _restore_handlers(replaced)


def _stopping() -> bool:
    """A stop signal came: start nothing more (checked between the run's steps)."""
    return _pending_stop is not None


class _ConsoleWriter:
    """A text stream that prints through a rich console (above a live display)."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def write(self, text: str) -> None:
        self.console.print(text, end="", markup=False, emoji=False, highlight=False, soft_wrap=True)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return True


class _TextAsBytes:
    """Lets ``-o -`` write bytes to a text stream that has no ``buffer`` (tests)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def write(self, data: bytes) -> None:
        self.stream.write(data.decode("utf-8", "replace"))

    def flush(self) -> None:
        self.stream.flush()


if __name__ == "__main__":  # pragma: no cover
    console()
