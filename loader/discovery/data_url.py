"""``data:`` URLs (RFC 2397), decoded locally: no request ever leaves the process."""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import unquote_to_bytes

from .._errors import InvalidURL

__all__ = ["decode_data_url"]

_ASCII_WHITESPACE = re.compile(rb"[\t\n\f\r ]+")
_BASE64_PARAM = re.compile(r";[\t\n\f\r ]*base64[\t\n\f\r ]*$", re.IGNORECASE)
_BASE64_BODY = re.compile(rb"[A-Za-z0-9+/]*")


def _short(url: str) -> str:
    return url if len(url) <= 80 else url[:77] + "..."


def decode_data_url(url: str) -> tuple[bytes, str]:
    """Decode a ``data:`` URL; return ``(body, content type)``.

    ``data:[<mediatype>][;base64],<data>``: the body is percent-decoded, and
    base64-decoded when ``;base64`` ends the header (whitespace ignored,
    padding optional, per the WHATWG "forgiving base64").  The content type
    defaults to ``text/plain;charset=US-ASCII``; ``data:;charset=utf-8,…``
    gives ``text/plain;charset=utf-8``.  A fragment is dropped.

    Raises :class:`~loader.InvalidURL` when ``url`` is not a ``data:`` URL,
    has no comma, or its base64 is malformed.
    """
    stripped = url.strip()
    if stripped[:5].lower() != "data:":
        raise InvalidURL("not a data: URL", url=_short(url))
    rest = stripped[5:].partition("#")[0]
    header, comma, data = rest.partition(",")
    if not comma:
        raise InvalidURL("data: URL has no comma before its data", url=_short(url))
    is_base64 = bool(_BASE64_PARAM.search(header))
    if is_base64:
        header = header[: _BASE64_PARAM.search(header).start()]  # type: ignore[union-attr]
    media = header.strip(" \t\n\f\r")
    if media.startswith(";"):
        params = media.strip(";").strip()
        media = f"text/plain;{params}" if params else ""
    if not media:
        media = "text/plain;charset=US-ASCII"
    body = unquote_to_bytes(data)
    if is_base64:
        body = _forgiving_base64(body, url)
    return body, media


def _forgiving_base64(data: bytes, url: str) -> bytes:
    data = _ASCII_WHITESPACE.sub(b"", data)
    if len(data) % 4 == 0 and data.endswith(b"="):
        data = data[:-2] if data.endswith(b"==") else data[:-1]
    if len(data) % 4 == 1 or not _BASE64_BODY.fullmatch(data):
        raise InvalidURL("data: URL has malformed base64", url=_short(url))
    data += b"=" * (-len(data) % 4)
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidURL("data: URL has malformed base64", url=_short(url)) from exc
