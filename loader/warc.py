"""WARC output: every exchange a loader makes, as received, in a WARC/1.1 file.

``Loader(warc=WarcWriter("crawl"))`` (or ``warc="crawl"``; ``loader fetch --warc-file
crawl``) writes ``crawl.warc.gz``::

    warcinfo                          the file's first record: software, format
    request   ─┐ per HTTP exchange    the request head as sent
    response  ─┘ (WARC-Concurrent-To) status line, header lines and body as received
    resource                          an FTP file, a Gopher item
    metadata                          each page's manifest (application/json)

The records are written here, not by warcio's writer: a record is a few header lines
and the block, and warcio's writer spends most of a small exchange's cost on a level-9
``zlib.compressobj`` per record (see ``benchmarks/inproc.py --warc``).  They are held to
`warcio <https://pypi.org/project/warcio/>`_'s reader (the ``[warc]`` extra), digests
included, by ``tests/test_warc.py``; warcio's command line indexes and replays them.

Records are written by the plugins through :class:`loader.Recorder` (on
``PluginContext.recorder``, ``None`` unless a WARC is being written): the HTTP plugin
hands over the status line's version and reason as received, the header lines in order
(names' case and repeated lines kept) and the body before its ``Content-Encoding`` is
undone (a gzip body stays gzip, as its headers say).  Header lines are written
``Name: value`` (the whitespace around a value is not kept).  A chunked body is stored
as one chunk (the original chunk sizes and any trailers are not kept), so the message
stays valid HTTP with its ``Transfer-Encoding`` line.  HTTP/2 responses keep their
lowercase header names and an ``HTTP/2 200`` status line.  A body cut short is
recorded with ``WARC-Truncated``.  Digests (``WARC-Block-Digest``, and
``WARC-Payload-Digest`` over the bytes after the HTTP head, as ``warcio check`` reads
them) are SHA-1 in base32.

Bodies are spooled (in memory up to :data:`SPOOL_SIZE`, in a temporary file past it) until they end, then written as one record, so
memory stays bounded however large a body is and concurrent exchanges never
interleave in the file.  Each record is its own gzip member (``gzip=False``: a plain
``.warc``).  The file is written under ``NAME.warc.gz.part`` and renamed when the
writer closes (the loader closes it): no partial file under the final name.

``cdx=True`` also writes a CDXJ index (``NAME.cdxj``, sorted): one line per response or
resource record, ``SURT-key timestamp {"url", "mime", "status", "digest", "length",
"offset", "filename"}``.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import itertools
import json
import os
import threading
import uuid
import zlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryFile
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ._context import Recorder, Recording
from ._errors import SaveError

if TYPE_CHECKING:
    from ._page import PageResult

__all__ = ["SPOOL_SIZE", "WarcWriter", "surt", "warc_name"]

#: zlib's compression level for each record's gzip member.
LEVEL = 6
#: zlib's memLevel: 4, not the default 8, whose larger tables cost more to set up for
#: each record than a small record takes to compress (~1.5 % larger output).
MEM_LEVEL = 4

#: A body past this many bytes is spooled to a temporary file, not kept in memory.
SPOOL_SIZE = 1 << 20

_CONFORMS_TO = "http://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/"
_COPY = 1 << 16


def warc_name(name: str | os.PathLike[str], gzip: bool = True) -> str:
    """The file ``--warc-file NAME`` writes: ``NAME.warc.gz`` (``NAME.warc`` without gzip),
    or ``NAME`` itself when it already ends in ``.warc`` or ``.warc.gz`` (wget's convention)."""
    text = os.fspath(name)
    if text.endswith((".warc", ".warc.gz")):
        return text
    return text + (".warc.gz" if gzip else ".warc")


def surt(url: str) -> str:
    """A URL's SURT key as CDX indexes sort it: ``http://www.Example.com:8080/a?b=1&a=2``
    → ``com,example:8080)/a?a=2&b=1`` (scheme and ``www.`` dropped, lowercased, query sorted)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().rstrip(".")
    if host.startswith("www."):
        host = host[4:]
    key = ",".join(reversed(host.split("."))) if host and not host.replace(".", "").isdigit() else host
    default = {"http": 80, "https": 443, "ftp": 21, "gopher": 70}.get(parts.scheme)
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is not None and port != default:
        key += f":{port}"
    query = "&".join(sorted(parts.query.split("&"))) if parts.query else ""
    return f"{key}){parts.path or '/'}{'?' + query if query else ''}".lower()


def _digest(hasher: Any) -> str:
    return "sha1:" + base64.b32encode(hasher.digest()).decode("ascii")


_EMPTY = "sha1:" + base64.b32encode(hashlib.sha1(b"").digest()).decode("ascii")


def _warc_date() -> str:
    # isoformat, not strftime: a tenth of the cost, and this runs once an exchange.
    return datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _record_id() -> str:
    return f"<urn:uuid:{uuid.uuid4()}>"


class _Spool:
    """A body's bytes: a list of chunks up to :data:`SPOOL_SIZE`, a temporary file past it.

    Our own, not ``SpooledTemporaryFile``: most bodies are small, and then the chunks
    are joined once into the record, never copied through a file object.
    """

    __slots__ = ("chunks", "file", "size")

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.file: IO[bytes] | None = None
        self.size = 0

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.file is not None:
            self.file.write(data)
            return
        self.chunks.append(data)
        if self.size > SPOOL_SIZE:
            self.file = TemporaryFile()  # noqa: SIM115 - closed with the spool
            self.file.writelines(self.chunks)
            self.chunks = []

    def contents(self) -> bytes | IO[bytes]:
        """The bytes (small), or the file rewound to its start (large)."""
        if self.file is None:
            return b"".join(self.chunks)
        self.file.seek(0)
        return self.file

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        self.chunks = []


class _Exchange(Recording):
    """One HTTP exchange or resource, spooled until its body ends, then written."""

    def __init__(self, writer: WarcWriter, url: str, resource: bool, content_type: str | None) -> None:
        self.url = url
        self.resource = resource
        self.content_type = content_type
        self.status: int | None = None
        self.date = _warc_date()
        self._writer = writer
        self._request: bytes | None = None
        self._head = b""
        self._chunked = False
        self._body = _Spool()
        self._payload = hashlib.sha1()
        self._block = hashlib.sha1()
        self.size = 0
        self._done = False

    def request(self, head: bytes) -> None:
        self._request = bytes(head)

    def response(
        self, version: bytes, status: int, reason: bytes, headers: Sequence[tuple[bytes, bytes]]
    ) -> None:
        self.status = status
        line = b"%s %d" % (version, status)
        if reason or not version.startswith(b"HTTP/2"):
            line += b" " + reason  # HTTP/1's space before an empty reason is the grammar's
        lines = [line]
        for name, value in headers:
            lines.append(name + b": " + value)
            lowered = name.lower()
            if lowered == b"transfer-encoding" and value.lower().rstrip().endswith(b"chunked"):
                self._chunked = True
            elif lowered == b"content-type" and self.content_type is None:
                self.content_type = value.decode("latin-1")
        self._head = b"\r\n".join(lines) + b"\r\n\r\n"
        self._block.update(self._head)

    def write(self, data: bytes) -> None:
        if self._done:
            return
        self._body.write(data)
        self.size += len(data)
        if not self._chunked:
            self._payload.update(data)
            self._block.update(data)

    def close(self, truncated: str | None = None) -> None:
        if self._done:
            return
        self._done = True
        try:
            self._writer.write_exchange(self, truncated)
        finally:
            self._body.close()

    def block(self) -> tuple[bytes, bytes | IO[bytes], bytes, str, str]:
        """The response or resource block to write (head, body, tail) and its digests."""
        head, tail = self._head, b""
        payload, block = self._payload, self._block
        body = self._body.contents()
        if self._chunked:  # one chunk: the sizes as sent are not kept
            size = self.size
            head += b"%x\r\n" % size if size else b""
            tail = b"\r\n0\r\n\r\n" if size else b"0\r\n\r\n"
            payload, block = hashlib.sha1(head[len(self._head):]), hashlib.sha1(head)
            for data in [body] if isinstance(body, bytes) else iter(functools.partial(body.read, _COPY), b""):
                payload.update(data)
                block.update(data)
            payload.update(tail)
            block.update(tail)
            body = self._body.contents()
        return head, body, tail, _digest(block), _digest(payload)

    @property
    def request_head(self) -> bytes | None:
        return self._request


class WarcWriter(Recorder):
    """Writes a loader's exchanges to ``target`` (see :func:`warc_name`) as WARC/1.1.

    ``gzip`` compresses each record (the default); ``cdx`` also writes a CDXJ index:
    ``True`` for ``NAME.cdxj`` beside the WARC, or a path.  ``info`` adds fields to the
    ``warcinfo`` record (``operator``, ``description`` …).  Hand it to
    ``Loader(warc=…)``, which closes it when the loader closes; or use it as a context
    manager around several loaders.  The file is created at once (a bad directory fails
    here, naming the path).  Thread-safe: a record is written whole under a lock.
    """

    def __init__(
        self,
        target: str | os.PathLike[str],
        *,
        gzip: bool = True,
        cdx: bool | str | os.PathLike[str] | None = None,
        info: Mapping[str, str] | None = None,
    ) -> None:
        self.path = Path(warc_name(target, gzip))
        self.gzip = gzip
        base = self.path.name.removesuffix(".gz").removesuffix(".warc")
        self.cdx_path: Path | None = (
            self.path.with_name(base + ".cdxj") if cdx is True else Path(cdx) if cdx else None
        )
        self._partial = self.path.with_name(self.path.name + ".part")
        try:
            self._out: IO[bytes] = open(self._partial, "wb")  # noqa: SIM115 - held until close
        except OSError as exc:
            raise SaveError(f"cannot write the WARC file {self.path}: {exc.strerror or exc}") from exc
        self._lock = threading.Lock()
        self._cdx: list[str] = []
        self._closed = False
        #: Records written so far (warcinfo included).
        self.records = 0
        from . import __version__

        fields = {
            "software": f"loader-fetch/{__version__}",
            "format": "WARC File Format 1.1",
            "conformsTo": _CONFORMS_TO,
        }
        fields.update(info or {})
        text = "".join(f"{name}: {value}\r\n" for name, value in fields.items() if value).encode("utf-8")
        self.warcinfo_id = _record_id()
        headers = [
            ("WARC-Type", "warcinfo"), ("WARC-Record-ID", self.warcinfo_id), ("WARC-Date", _warc_date()),
            ("WARC-Filename", self.path.name), ("WARC-Block-Digest", _digest(hashlib.sha1(text))),
            ("Content-Type", "application/warc-fields"),
        ]
        with self._lock:
            self._write(headers, text, b"", b"", 0, None)

    # -- the Recorder seam ---------------------------------------------------------

    def begin(self, url: str, *, resource: bool = False, content_type: str | None = None) -> Recording:
        """A recording for one exchange (or ``resource``); written when it is closed."""
        return _Exchange(self, url, resource, content_type)

    # -- writing -------------------------------------------------------------------

    def _headers(self, kind: str, url: str, date: str, record_id: str | None = None) -> list[tuple[str, str]]:
        return [
            ("WARC-Type", kind), ("WARC-Record-ID", record_id or _record_id()), ("WARC-Date", date),
            ("WARC-Target-URI", url), ("WARC-Warcinfo-ID", self.warcinfo_id),
        ]

    def _write(
        self, headers: list[tuple[str, str]], head: bytes, body: bytes | IO[bytes], tail: bytes, size: int,
        cdx: dict[str, Any] | None,
    ) -> None:
        """One record, its own gzip member: WARC head, then the block (``head``, ``size`` bytes
        of ``body``, ``tail``), then two CRLFs.  The caller holds the lock."""
        if self._closed:
            raise RuntimeError(f"{self.path}: the WARC writer is closed")
        length = len(head) + size + len(tail)
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers)
        warc_head = f"WARC/1.1\r\n{lines}Content-Length: {length}\r\n\r\n".encode()
        out = self._out
        offset = out.tell()
        packer = zlib.compressobj(LEVEL, zlib.DEFLATED, 31, MEM_LEVEL) if self.gzip else None  # a gzip member
        if isinstance(body, bytes):  # in one piece
            data = b"".join((warc_head, head, body, tail, b"\r\n\r\n"))
            out.write(data if packer is None else packer.compress(data) + packer.flush())
        else:  # streamed from the spool file, in bounded pieces
            pieces = itertools.chain((warc_head, head), iter(functools.partial(body.read, _COPY), b""),
                                     (tail + b"\r\n\r\n",))
            for piece in pieces:
                out.write(piece if packer is None else packer.compress(piece))
            if packer is not None:
                out.write(packer.flush())
        self.records += 1
        if cdx is not None and self.cdx_path is not None:
            cdx["length"] = out.tell() - offset
            cdx["offset"] = offset
            cdx["filename"] = self.path.name
            stamp = "".join(c for c in headers[2][1] if c.isdigit())[:14]
            self._cdx.append(f"{surt(cdx['url'])} {stamp} {json.dumps(cdx, ensure_ascii=False)}")

    def write_exchange(self, exchange: _Exchange, truncated: str | None) -> None:
        """Write a closed recording: a ``request`` and a ``response`` record, or a ``resource``."""
        url, date = exchange.url, exchange.date
        head, body, tail, block_digest, payload_digest = exchange.block()
        kind = "resource" if exchange.resource else "response"
        headers = self._headers(kind, url, date)
        if exchange.peer:
            headers.append(("WARC-IP-Address", exchange.peer))
        headers += [("WARC-Block-Digest", block_digest), ("WARC-Payload-Digest", payload_digest)]
        if truncated:
            headers.append(("WARC-Truncated", truncated))
        if exchange.resource:
            headers.append(("Content-Type", exchange.content_type or "application/octet-stream"))
        else:
            headers.append(("Content-Type", "application/http; msgtype=response"))
        cdx = {
            "url": url, "mime": (exchange.content_type or "unk").split(";")[0].strip() or "unk",
            "status": str(exchange.status) if exchange.status is not None else "-",
            "digest": payload_digest.removeprefix("sha1:"),
        }
        request = exchange.request_head
        with self._lock:
            if request is not None:
                request_headers = self._headers("request", url, date) + [
                    ("WARC-Concurrent-To", headers[1][1]),
                    ("WARC-Block-Digest", _digest(hashlib.sha1(request))),
                    ("WARC-Payload-Digest", _EMPTY),  # a GET has no body after its head
                    ("Content-Type", "application/http; msgtype=request"),
                ]
                self._write(request_headers, request, b"", b"", 0, None)
            self._write(headers, head, body, tail, exchange.size, cdx)

    def page(self, page: PageResult) -> None:
        """A ``metadata`` record for a fetched page: its manifest (JSON), as saved when it was."""
        text: bytes | None = None
        if page.manifest is not None:
            try:
                text = page.manifest.read_bytes()
            except OSError:
                text = None
        if text is None:
            def entry(r: Any) -> dict[str, Any]:
                return {"url": r.url, "final_url": r.final_url, "kind": r.kind, "status": r.status,
                        "size": r.size, "content_type": r.content_type, "ok": r.ok,
                        "error": None if r.error is None else str(r.error)}

            text = json.dumps({"page": entry(page.document),
                               "resources": [entry(r) for r in page.resources]},
                              ensure_ascii=False).encode("utf-8")
        headers = self._headers("metadata", page.url, _warc_date()) + [
            ("WARC-Block-Digest", _digest(hashlib.sha1(text))), ("Content-Type", "application/json"),
        ]
        with self._lock:
            self._write(headers, text, b"", b"", 0, None)

    def close(self) -> None:
        """Finish the file (renamed to its final name) and write the CDXJ index; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._out.close()
            os.replace(self._partial, self.path)
            if self.cdx_path is not None:
                self._cdx.sort()
                partial = self.cdx_path.with_name(self.cdx_path.name + ".part")
                with open(partial, "w", encoding="utf-8") as out:
                    out.write("!OpenWayback-CDXJ 1.0\n")
                    out.writelines(line + "\n" for line in self._cdx)
                os.replace(partial, self.cdx_path)
                self._cdx = []

    def __enter__(self) -> WarcWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
