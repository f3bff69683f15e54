"""The ``loader crawl-status`` subcommand's parser, kept apart from what it runs.

Building it must not load :mod:`loader._frontier_redis` (and with it the frontiers:
sqlite3, uuid, hashlib, ~20 ms of ``loader --help``); the command's work is imported
when it runs.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_status_command"]


def add_status_command(sub: Any) -> None:
    """Add ``loader crawl-status --frontier URL [--collect | --json | --reset]``."""
    status = sub.add_parser(
        "crawl-status", help="a shared crawl's counts, results or reset (--frontier redis://…)",
        description="Print a shared crawl's counts (queued, under way, seen, done), its results "
                    "stream (--collect: one JSON line a page) or delete its keys (--reset).")
    status.add_argument("--frontier", required=True, metavar="URL",
                        help="redis://HOST:PORT/DB[?crawl=NAME], as given to fetch -r")
    what = status.add_mutually_exclusive_group()
    what.add_argument("--collect", action="store_true",
                      help="print each page's result and manifest from the results stream, as JSON lines")
    what.add_argument("--json", action="store_true", help="print the counts as one JSON object")
    what.add_argument("--reset", action="store_true", help="delete the crawl's keys (start over)")
    status.set_defaults(sync=_run)


def _run(args: argparse.Namespace) -> int:
    from ._frontier_redis import run_status_command

    return run_status_command(args)
