"""``loader ftp ls|mkdir|rmdir|rm|mv|put|get|pwd`` (added through ``loader_add_commands``).

Every command takes an ``ftp://`` or ``ftps://`` URL naming the server, the
login (``user:password@``, ``~/.netrc``, or anonymous) and the path it works
on; it runs one :class:`~loader_ftp.FtpSession` operation and exits 0 on
success, 3 (``EXIT_FAILED``) on failure, with ``error: URL: cause`` (the
server's reply, escaped) on stderr.

::

    loader ftp ls ftp://ftp.example.org/pub/ -l
    loader ftp get ftp://ftp.example.org/pub/big.iso -o big.iso --continue
    loader ftp put report.pdf ftp://alice@example.org/incoming/
    loader ftp mv ftp://alice@example.org/incoming/report.pdf old-report.pdf
"""

from __future__ import annotations

import argparse
import functools
import posixpath
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loader import LoaderError
from loader._display import json_line, printable, shown_url
from loader.cli import add_common_options

from ._listing import Entry
from ._url import FtpURL

if TYPE_CHECKING:
    from ._session import FtpSession

__all__ = ["add_commands", "format_entries"]

from loader.cli import EXIT_FAILED, EXIT_OK  # the same exit codes as every subcommand

_DESCRIPTION = """\
Directory and file operations on an FTP server.  Every command takes an
ftp:// or ftps:// (explicit TLS) URL naming the server, the login
(user:password@, ~/.netrc, or anonymous) and the path it works on.

examples:
  loader ftp ls ftp://ftp.example.org/pub/ -l
  loader ftp get ftp://ftp.example.org/pub/big.iso -o big.iso --continue
  loader ftp put report.pdf ftp://alice@example.org/incoming/
  loader ftp mv ftp://alice@example.org/incoming/report.pdf old-report.pdf
"""

Runner = Callable[[argparse.Namespace, Any], Awaitable[int]]


def add_commands(subparsers: Any) -> None:
    """Add ``ftp`` and its subcommands to the ``loader`` command line."""
    ftp = subparsers.add_parser(
        "ftp",
        help="FTP directory and file operations",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = ftp.add_subparsers(dest="ftp_command", metavar="COMMAND", required=True)

    def command(name: str, help: str, run: Runner) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = commands.add_parser(name, help=help, description=help)
        parser.set_defaults(run=run)
        return parser

    ls = command("ls", "list a directory (MLSD, LIST or NLST, whatever the server offers)", _run_ls)
    ls.add_argument("url", help="directory URL, e.g. ftp://host/pub/")
    ls.add_argument("-l", "--long", action="store_true", help="show type, size and date")
    ls.add_argument(
        "--json", dest="ftp_json", action="store_true", help="one JSON object per entry"
    )

    mkdir = command("mkdir", "create a directory", _run_mkdir)
    mkdir.add_argument("url", help="URL of the directory to create")

    rmdir = command("rmdir", "remove an empty directory", _run_rmdir)
    rmdir.add_argument("url", help="URL of the directory to remove")

    rm = command("rm", "delete a file", _run_rm)
    rm.add_argument("url", help="URL of the file to delete")

    mv = command("mv", "rename or move a file or directory", _run_mv)
    mv.add_argument("url", help="URL of the file or directory")
    mv.add_argument(
        "new",
        help="new name: a path relative to the URL's directory, an absolute path, or a URL on the same server",
    )

    put = command("put", "upload a local file (streamed)", _run_put)
    put.add_argument("local", type=Path, help="the local file")
    put.add_argument("url", help="target URL; one ending in / gets the local file's name")
    put.add_argument("--append", action="store_true", help="append to the remote file (APPE)")

    get = command("get", "download a file", _run_get)
    get.add_argument("url", help="URL of the file")
    get.add_argument(
        "-o", "--output", help="local file (default: the remote name, here); - for stdout"
    )
    get.add_argument(
        "-c", "--continue", dest="resume", action="store_true", help="resume a partial file (REST)"
    )

    pwd = command("pwd", "print the login directory (or the URL's directory)", _run_pwd)
    pwd.add_argument("url", help="server URL, e.g. ftp://host/ or ftp://host/pub/")

    for parser in (ls, mkdir, rmdir, rm, mv, put, get, pwd):
        add_common_options(parser)


def format_entries(entries: list[Entry], *, long: bool = False) -> list[str]:
    """Lines for ``ftp ls``: names (directories with a trailing ``/``), or with ``-l``
    type, size and date in columns."""
    lines = []
    for entry in entries:
        # Names come from the server: escape what a terminal would act on (ESC
        # sequences) or what would reorder the line (U+202E).
        name = printable(entry.name) + ("/" if entry.type == "dir" else "")
        if entry.target:
            name += f" -> {printable(entry.target)}"
        if long:
            size = "" if entry.size is None else str(entry.size)
            modified = printable(entry.modified or "")
            lines.append(f"{printable(entry.type or '?'):<5} {size:>12}  {modified:<20}  {name}")
        else:
            lines.append(name)
    return lines


def _session(loader: Any, url: str) -> tuple[FtpSession, FtpURL]:
    from ._session import FtpSession  # on use: `loader --help` must not load the client

    target = FtpURL.parse(url)
    return FtpSession(loader, target.login_url), target


def _needs_path(command: str, target: FtpURL) -> str:
    if not target.path:
        raise LoaderError(f"{command} needs a path in the URL", url=target.redacted)
    return target.path


def _reports(command: str) -> Callable[[Runner], Runner]:
    """Turn a :mod:`loader` error into ``error: URL: cause`` on stderr (as ``loader fetch``
    reports a failure: password redacted, server text escaped) and ``EXIT_FAILED``."""

    def wrap(run: Runner) -> Runner:
        @functools.wraps(run)
        async def reporting(args: argparse.Namespace, loader: Any) -> int:
            try:
                return await run(args, loader)
            except LoaderError as exc:
                from loader._progress import failure_text

                print(f"error: {failure_text(exc.url or args.url, exc)}", file=sys.stderr)
                return EXIT_FAILED

        return reporting

    return wrap


@_reports("ls")
async def _run_ls(args: argparse.Namespace, loader: Any) -> int:
    session, target = _session(loader, args.url)
    async with session:
        entries = await session.list(target.path)
    if args.ftp_json:
        for entry in entries:
            sys.stdout.write(json_line(entry.to_json()) + "\n")
    else:
        for line in format_entries(entries, long=args.long):
            sys.stdout.write(line + "\n")
    return EXIT_OK


def _on_path(command: str, operation: Callable[[FtpSession, str], Awaitable[Any]]) -> Runner:
    """A subcommand that runs one session operation on the URL's path (and prints what it returns)."""

    @_reports(command)
    async def run(args: argparse.Namespace, loader: Any) -> int:
        session, target = _session(loader, args.url)
        path = _needs_path(command, target)
        async with session:
            result = await operation(session, path)
        if result is not None:
            print(printable(str(result)))
        return EXIT_OK

    return run


_run_mkdir = _on_path("mkdir", lambda session, path: session.mkdir(path))
_run_rmdir = _on_path("rmdir", lambda session, path: session.rmdir(path))
_run_rm = _on_path("rm", lambda session, path: session.delete(path))


@_reports("mv")
async def _run_mv(args: argparse.Namespace, loader: Any) -> int:
    session, target = _session(loader, args.url)
    path = _needs_path("mv", target)
    new: str = args.new
    if "://" in new:
        other = FtpURL.parse(new)
        if (other.host, other.port) != (target.host, target.port):
            raise LoaderError("mv cannot move between servers", url=target.redacted)
        new = other.path
    elif not new.startswith("/"):
        new = posixpath.join(posixpath.dirname(path), new)
    async with session:
        await session.rename(path, new)
    return EXIT_OK


@_reports("put")
async def _run_put(args: argparse.Namespace, loader: Any) -> int:
    local: Path = args.local
    if not local.is_file():
        raise LoaderError(f"no such local file: {local}", url=FtpURL.parse(args.url).redacted)
    session, target = _session(loader, args.url)
    path = target.path
    if target.directory:
        path = posixpath.join(path, local.name) if path else local.name
    async with session:
        sent = await session.put(local, path, append=args.append)
    print(f"{sent} bytes sent to {shown_url(session.url_for(path))}", file=sys.stderr)
    return EXIT_OK


@_reports("get")
async def _run_get(args: argparse.Namespace, loader: Any) -> int:
    session, target = _session(loader, args.url)
    if target.directory or not target.path:
        raise LoaderError("get needs a file URL (use 'ls' for directories)", url=target.redacted)
    binary = target.type != "a"
    output = args.output or posixpath.basename(target.path)
    async with session:
        if output == "-":
            async with session.open(target.path, binary=binary) as remote:
                async for chunk in remote:
                    sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
            return EXIT_OK
        received = await session.get(target.path, output, resume=args.resume, binary=binary)
    print(f"{received} bytes received into {printable(output)}", file=sys.stderr)
    return EXIT_OK


@_reports("pwd")
async def _run_pwd(args: argparse.Namespace, loader: Any) -> int:
    session, target = _session(loader, args.url)
    async with session:
        print(printable(await (session.cwd(target.path) if target.path else session.pwd())))
    return EXIT_OK
