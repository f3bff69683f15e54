"""``data:`` URLs (RFC 2397), decoded locally: a request that completes at once."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote_to_bytes

from ._errors import InvalidURL

__all__ = ["decode_data_url"]


def decode_data_url(url: str) -> tuple[bytes, str]:
    """Return ``(body, content type)`` of a ``data:`` URL; ``InvalidURL`` when it is malformed."""
    if not url[:5].lower() == "data:":
        raise InvalidURL("not a data: URL", url=url[:80])
    header, comma, payload = url[5:].partition(",")
    if not comma:
        raise InvalidURL("data: URL without a comma", url=url[:80])
    params = [p.strip() for p in header.split(";")]
    is_base64 = bool(params) and params[-1].lower() == "base64"
    if is_base64:
        params.pop()
    media = params[0] if params and "/" in params[0] else "text/plain"
    extra = [p for p in params[1:] if p] if params and "/" in params[0] else [p for p in params if p]
    if media == "text/plain" and not any(p.lower().startswith("charset=") for p in extra):
        extra.append("charset=US-ASCII")
    content_type = ";".join([media, *extra]) if extra and media != "text/plain" else media
    if media == "text/plain" and extra and extra != ["charset=US-ASCII"]:
        content_type = ";".join([media, *extra])
    body = unquote_to_bytes(payload)
    if is_base64:
        try:
            body = base64.b64decode(b"".join(body.split()), validate=False)
        except (binascii.Error, ValueError) as exc:
            raise InvalidURL(f"bad base64 in data: URL: {exc}", url=url[:80]) from exc
    return body, content_type
