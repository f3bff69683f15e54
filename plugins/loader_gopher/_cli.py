"""``loader gopher ls URL`` and ``loader gopher search URL TERMS`` (added through ``loader_add_commands``)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any, TextIO

from loader import LoaderError
from loader._display import json_line, printable, shown_url
from loader.cli import EXIT_FAILED, EXIT_OK, add_common_options

if TYPE_CHECKING:
    from loader import Loader

    from ._menu import Menu

__all__ = ["add_commands", "format_menu"]

# Longest display column before it stops pushing the URLs to the right.
_DISPLAY_WIDTH = 40


def add_commands(subparsers: Any) -> None:
    """Add ``gopher ls`` and ``gopher search`` to the ``loader`` command line."""
    gopher = subparsers.add_parser(
        "gopher",
        help="read Gopher menus and run Gopher searches",
        description="Gopher operations: 'ls' prints a menu, 'search' runs a type-7 search.",
    )
    commands = gopher.add_subparsers(dest="gopher_command", metavar="COMMAND", required=True)

    ls = commands.add_parser("ls", help="print a menu: type, display string and URL of each item")
    ls.add_argument("url", help="a gopher:// or gophers:// menu URL")
    _add_output_options(ls)
    add_common_options(ls)
    ls.set_defaults(run=_run_ls)

    find = commands.add_parser("search", help="run a type-7 search and print the result menu")
    find.add_argument("url", help="the search item's URL (gopher://host/7/selector)")
    find.add_argument("terms", nargs="+", help="search terms (joined with spaces)")
    _add_output_options(find)
    add_common_options(find)
    find.set_defaults(run=_run_search)


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", dest="gopher_json", action="store_true", help="one JSON object per item"
    )
    parser.add_argument(
        "--links-only", action="store_true", help="leave out informational (i) and error lines"
    )


def format_menu(menu: Menu, *, links_only: bool = False) -> list[str]:
    """Readable lines for a menu: kind, display string and target URL, aligned in columns.

    Informational lines show only their text, indented to the display column.
    Everything the server wrote goes through :func:`loader._display.printable`
    (escape sequences, bidi overrides and invisible characters are shown as
    escapes, never acted on by the terminal).
    """
    items = [item for item in menu if not links_only or item.fetchable]
    shown = [(item, printable(item.type), printable(item.display)) for item in items]
    width = min(_DISPLAY_WIDTH, max((len(d) for i, _, d in shown if not i.is_info), default=0))
    lines = []
    for item, kind, display in shown:
        if item.is_info:
            lines.append(f"{'':<10}{display}".rstrip())
        elif item.fetchable:
            target = shown_url(item.target)
            lines.append(f"{kind} {item.kind.value:<8}{display:<{width}}  {target}")
        else:
            lines.append(f"{kind} {item.kind.value:<8}{display}".rstrip())
    return lines


def _print(menu: Menu, args: argparse.Namespace, out: TextIO) -> None:
    links_only = getattr(args, "links_only", False)
    if getattr(args, "gopher_json", False):
        for item in menu:
            if links_only and not item.fetchable:
                continue
            record = {
                "type": item.type,
                "kind": item.kind.value,
                "display": item.display,
                "selector": item.selector,
                "host": item.host,
                "port": item.port,
                "url": item.url if item.fetchable else None,
                "target": item.target if item.fetchable else None,
            }
            out.write(json_line(record) + "\n")
        return
    for line in format_menu(menu, links_only=links_only):
        out.write(line + "\n")


async def _run_ls(args: argparse.Namespace, loader: Loader) -> int:
    return await _run(args, loader, None)


async def _run_search(args: argparse.Namespace, loader: Loader) -> int:
    return await _run(args, loader, " ".join(args.terms))


async def _run(args: argparse.Namespace, loader: Loader, terms: str | None) -> int:
    # ``main`` hands its streams over on ``args`` (so tests can capture them).
    stdout: TextIO = getattr(args, "_stdout", sys.stdout)
    stderr: TextIO = getattr(args, "_stderr", sys.stderr)
    try:
        from ._api import read_menu  # on use: `loader --help` must not load the client

        menu = await read_menu(loader, args.url, search=terms)
    except LoaderError as exc:
        # The message may quote the server (an error item's text).
        stderr.write(f"loader gopher {args.gopher_command}: {printable(str(exc))}\n")
        return EXIT_FAILED
    _print(menu, args, stdout)
    return EXIT_OK
