"""Directory listings, without I/O: MLSD, LIST (Unix and DOS/IIS styles) and NLST.

Servers answer a listing in one of three shapes:

* ``MLSD`` (RFC 3659), machine-readable: ``type=file;size=42;modify=20240101120000; name``;
* ``LIST``, meant for people: ``-rw-r--r-- 1 ftp ftp 42 Jan  1 12:00 name``
  (Unix ``ls -l``) or ``01-01-24  12:00PM  42 name`` (DOS / IIS);
* ``NLST``, bare names.

All become :class:`Entry` objects.  A directory fetched through the protocol
handler is served as an ``ftp-listing`` document whose body is one JSON
object per line (see :func:`dump_listing`), whatever the server sent, so the
extractor (and any other reader) parses one format.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass

from loader import ProtocolError
from loader.discovery import kind_for_name

from ._reply import decode_text

__all__ = [
    "MAX_LISTING_LINE",
    "Entry",
    "LineSplitter",
    "dump_listing",
    "kind_for_name",
    "load_listing",
    "parse_list",
    "parse_list_line",
    "parse_mlsd",
    "parse_mlsd_line",
    "parse_nlst",
    "parse_nlst_line",
]

#: Longest listing line accepted (bytes): a path of PATH_MAX plus facts, with room to spare.
MAX_LISTING_LINE = 16384

#: Content type of a listing body (JSON Lines).
LISTING_CONTENT_TYPE = "application/jsonl"


@dataclass(frozen=True, slots=True)
class Entry:
    """One directory entry.

    ``type`` is ``"file"``, ``"dir"``, ``"link"``, ``"other"`` or ``None``
    when the server did not say (NLST).  ``modified`` is ISO 8601 when the
    listing gave a full timestamp (MLSD), else the listing's own text.
    ``target`` is where a symbolic link points (Unix LIST only).
    """

    name: str
    type: str | None = None
    size: int | None = None
    modified: str | None = None
    target: str | None = None

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict without the fields that are ``None``."""
        return {k: v for k, v in asdict(self).items() if v is not None}


class LineSplitter:
    """Split a listing body into lines as it streams, holding at most one partial line.

    Lines end in LF (CRLF or a bare LF: servers send both); blank lines are
    dropped.  A line longer than ``max_line`` bytes raises
    :class:`~loader.ProtocolError` at once rather than being buffered whole: no
    real entry is that long (a path is at most a few KiB), so a server sending
    one is broken or hostile, and silently dropping it could hide an entry.
    """

    def __init__(self, max_line: int = MAX_LISTING_LINE) -> None:
        self.max_line = max_line
        self._partial = bytearray()

    def feed(self, data: bytes) -> list[str]:
        """The lines completed by ``data``, decoded (see :func:`~loader_ftp._reply.decode_text`)."""
        self._partial += data
        lines: list[str] = []
        start = 0
        buffer = self._partial
        while (end := buffer.find(b"\n", start)) >= 0:
            if end - start > self.max_line:
                raise ProtocolError(f"listing line longer than {self.max_line} bytes")
            self._add(bytes(buffer[start:end]), lines)
            start = end + 1
        del buffer[:start]
        if len(buffer) > self.max_line:
            raise ProtocolError(f"listing line longer than {self.max_line} bytes")
        return lines

    def flush(self) -> list[str]:
        """The last line, when the body did not end with a line end."""
        lines: list[str] = []
        if self._partial:
            self._add(bytes(self._partial), lines)
            self._partial.clear()
        return lines

    @staticmethod
    def _add(raw: bytes, lines: list[str]) -> None:
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        line = decode_text(raw)
        if line.strip():
            lines.append(line)


def _lines(raw: bytes) -> Iterator[str]:
    splitter = LineSplitter(max_line=max(len(raw), 1))
    yield from splitter.feed(raw)
    yield from splitter.flush()


def parse_mlsd_line(line: str) -> Entry | None:
    """One MLSD line as an entry; ``None`` for ``cdir``/``pdir`` (``.`` and ``..``)."""
    facts_text, sep, name = line.partition(" ")
    if not sep:  # no facts at all: the whole line is a name
        facts_text, name = "", line
    facts: dict[str, str] = {}
    for fact in facts_text.split(";"):
        key, eq, value = fact.partition("=")
        if eq:
            facts[key.strip().lower()] = value
    kind = facts.get("type", "").lower()
    if kind in ("cdir", "pdir") or name in (".", ".."):
        return None
    if kind.startswith("os.unix=slink") or kind == "os.unix=symlink":
        kind = "link"
    elif kind not in ("file", "dir"):
        kind = "other" if kind else ""
    size = facts.get("size")
    return Entry(
        name=name,
        type=kind or None,
        size=int(size) if size and size.isdigit() else None,
        modified=_mlsd_time(facts.get("modify")),
    )


def parse_mlsd(raw: bytes) -> list[Entry]:
    """Entries of an MLSD body; ``cdir``/``pdir`` entries (``.`` and ``..``) are dropped."""
    return [e for e in map(parse_mlsd_line, _lines(raw)) if e is not None]


def _mlsd_time(value: str | None) -> str | None:
    """``YYYYMMDDHHMMSS[.sss]`` (UTC) to ISO 8601, or ``None`` when it is not that."""
    if not value or len(value) < 14 or not value[:14].isdigit():
        return None
    v = value
    return f"{v[0:4]}-{v[4:6]}-{v[6:8]}T{v[8:10]}:{v[10:12]}:{v[12:14]}Z"


_UNIX = re.compile(
    r"^(?P<mode>[-dlbcpsD?][-rwxsStTlL@+.]{9}\S*)\s+"
    r"(?:.*?\s)?"
    r"(?P<size>\d+)\s+"
    r"(?P<date>[A-Za-z]{3}\s+\d{1,2}\s+(?:\d{1,2}:\d{2}|\d{4}))\s"
    r"(?P<name>.+)$"
)
_DOS = re.compile(
    r"^(?P<date>\d{1,2}[-/]\d{1,2}[-/]\d{2,4})\s+"
    r"(?P<time>\d{1,2}:\d{2}(?::\d{2})?\s*(?:[AaPp][Mm])?)\s+"
    r"(?P<size><DIR>|\d+)\s+"
    r"(?P<name>.+)$"
)


def parse_list_line(line: str) -> Entry | None:
    """One LIST line (Unix or DOS style, or a bare name) as an entry; ``None`` to skip it.

    Skipped: ``total N`` lines, ``.`` and ``..``, and lines with spaces that
    match neither style (a heading, say) — a listing is read for names, and a
    guessed name would be fetched.
    """
    if line.startswith("total ") and line[6:].strip().isdigit():
        return None
    match = _UNIX.match(line)
    if match:
        mode = match.group("mode")[0]
        name = match.group("name")
        target = None
        kind = {"-": "file", "d": "dir", "l": "link"}.get(mode, "other")
        if kind == "link" and " -> " in name:
            name, target = name.split(" -> ", 1)
        if name in (".", ".."):
            return None
        return Entry(
            name=name,
            type=kind,
            size=int(match.group("size")) if kind == "file" else None,
            modified=" ".join(match.group("date").split()),
            target=target,
        )
    match = _DOS.match(line)
    if match:
        is_dir = match.group("size").upper() == "<DIR>"
        name = match.group("name")
        if name in (".", ".."):
            return None
        return Entry(
            name=name,
            type="dir" if is_dir else "file",
            size=None if is_dir else int(match.group("size")),
            modified=f"{match.group('date')} {match.group('time').replace(' ', '')}",
        )
    name = line.strip()
    if not name or " " in name or name in (".", ".."):
        return None
    return Entry(name=posixpath.basename(name.rstrip("/")) or name)


def parse_list(raw: bytes) -> list[Entry]:
    """Entries of a LIST body, each line parsed on its own (servers mix styles rarely,
    but a Unix ``total`` line or a bare name must not derail the rest)."""
    return [e for e in (parse_list_line(line) for line in _lines(raw)) if e is not None]


def parse_nlst_line(line: str) -> Entry | None:
    """One NLST line (a name, maybe with its directory) as an entry; ``None`` to skip it."""
    name = posixpath.basename(line.rstrip("/")) if "/" in line.rstrip("/") else line.rstrip("/")
    if name and name not in (".", ".."):
        return Entry(name=name)
    return None


def parse_nlst(raw: bytes) -> list[Entry]:
    """Entries of an NLST body: names only (some servers prefix the directory)."""
    return [e for e in map(parse_nlst_line, _lines(raw)) if e is not None]


def dump_listing(entries: Iterable[Entry]) -> bytes:
    """The ``ftp-listing`` document body: one JSON object per entry and line (JSON Lines).

    Example line: ``{"name": "a.png", "type": "file", "size": 42}``.
    """
    return b"".join(
        json.dumps(e.to_json(), ensure_ascii=False).encode("utf-8", "surrogateescape") + b"\n"
        for e in entries
    )


def load_listing(body: bytes) -> list[Entry]:
    """Read an ``ftp-listing`` body back into entries; lines that are not entries are skipped."""
    entries = []
    for line in body.decode("utf-8", "surrogateescape").splitlines():
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict) and isinstance(data.get("name"), str):
            size = data.get("size")
            entries.append(
                Entry(
                    name=data["name"],
                    type=data.get("type") if isinstance(data.get("type"), str) else None,
                    size=size if isinstance(size, int) else None,
                    modified=data.get("modified")
                    if isinstance(data.get("modified"), str)
                    else None,
                    target=data.get("target") if isinstance(data.get("target"), str) else None,
                )
            )
    return entries

