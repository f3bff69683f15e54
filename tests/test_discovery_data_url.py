"""data: URLs are decoded locally (RFC 2397)."""

from __future__ import annotations

import pytest

from loader._errors import InvalidURL
from loader.discovery import decode_data_url


@pytest.mark.parametrize(
    ("url", "body", "content_type"),
    [
        ("data:,Hello%2C%20World!", b"Hello, World!", "text/plain;charset=US-ASCII"),
        ("data:text/plain;base64,SGVsbG8sIFdvcmxkIQ==", b"Hello, World!", "text/plain"),
        (
            "data:image/gif;base64,R0lGODlhAQABAAAAACw=",
            b"GIF89a\x01\x00\x01\x00\x00\x00\x00,",
            "image/gif",
        ),
        # Forgiving base64: whitespace, missing padding, case of the parameter.
        ("data:image/png;BASE64,iVBO Rw0K\nGgo", b"\x89PNG\r\n\x1a\n", "image/png"),
        ("data:;base64,SGk=", b"Hi", "text/plain;charset=US-ASCII"),
        ("data:;charset=utf-8,%E2%82%AC", "€".encode(), "text/plain;charset=utf-8"),
        (
            "data:image/svg+xml;utf8,<svg xmlns='http://www.w3.org/2000/svg'/>",
            b"<svg xmlns='http://www.w3.org/2000/svg'/>",
            "image/svg+xml;utf8",
        ),
        ("DATA:text/html,<b>x</b>#fragment", b"<b>x</b>", "text/html"),
        ("data:text/plain;base64,", b"", "text/plain"),
        (" data:,x ", b"x", "text/plain;charset=US-ASCII"),
    ],
)
def test_decodes(url: str, body: bytes, content_type: str) -> None:
    assert decode_data_url(url) == (body, content_type)


@pytest.mark.parametrize(
    "url",
    [
        "http://example.test/x.png",
        "data:text/plain",
        "data:text/plain;base64,SGVsbG8=x",
        "data:text/plain;base64,A",
        "data:text/plain;base64,SGV$bG8=",
    ],
)
def test_rejects(url: str) -> None:
    with pytest.raises(InvalidURL) as info:
        decode_data_url(url)
    assert info.value.url is not None


def test_error_names_a_shortened_url() -> None:
    with pytest.raises(InvalidURL) as info:
        decode_data_url("data:image/png;base64," + "A" * 10_001)
    assert len(info.value.url or "") <= 80
