"""Choosing the encoding of fetched HTML: broken encodings never crash."""

from __future__ import annotations

import pytest

from loader.discovery import discover, parse_document
from loader.discovery.encoding import charset_from_content_type, decode_html, lookup_encoding

URL = "http://example.test/"


def img_url(html: bytes, content_type: str | None = None) -> str:
    return discover(parse_document(html, URL, content_type)).found[0].url


def test_meta_charset() -> None:
    html = '<meta charset="windows-1251"><img src="картинка.png">'.encode("cp1251")
    assert img_url(html) == URL + "картинка.png"


def test_meta_http_equiv() -> None:
    html = '<meta http-equiv="Content-Type" content="text/html; charset=Shift_JIS"><img src="画像.png">'
    assert img_url(html.encode("cp932")) == URL + "画像.png"


def test_content_type_wins_over_meta() -> None:
    html = '<meta charset="utf-8"><img src="é.png">'.encode("latin-1")
    assert img_url(html, "text/html; charset=ISO-8859-1") == URL + "é.png"


def test_bom_wins_over_everything() -> None:
    html = "\ufeff<meta charset=windows-1252><img src='ü.png'>".encode()
    assert img_url(html, "text/html; charset=koi8-r") == URL + "ü.png"
    utf16 = "\ufeff<img src='ü.png'>".encode("utf-16-le")
    assert img_url(utf16) == URL + "ü.png"


def test_default_is_utf8_with_replacement() -> None:
    text, codec = decode_html(b"<img src='\xff\xfe\xc3(.png'>")
    assert codec == "utf-8"
    assert "\ufffd" in text
    assert parse_document(b"<img src='\xff.png'>", URL, None).extra["encoding"] == "utf-8"


@pytest.mark.parametrize(
    "label", ["utf-7", "base64", "rot13", "undefined", "no-such-thing", "", "x-user-defined"]
)
def test_unusable_declarations_are_ignored(label: str) -> None:
    html = f'<meta charset="{label}"><img src="x.png">'.encode()
    assert decode_html(html)[1] == "utf-8"
    assert decode_html(b"<img>", f"text/html; charset={label}")[1] == "utf-8"
    assert img_url(html, f"text/html; charset={label}") == URL + "x.png"


def test_whatwg_label_mapping() -> None:
    assert lookup_encoding("ISO-8859-1") == "cp1252"
    assert lookup_encoding(" latin1 ") == "cp1252"
    assert lookup_encoding("gb2312") == "gb18030"
    assert lookup_encoding("euc-kr") == "cp949"
    assert lookup_encoding('"UTF-8"') == "utf-8"
    assert charset_from_content_type("text/html; charset='koi8-r'") == "koi8-r"
    assert charset_from_content_type("text/html") is None


def test_meta_declaring_utf16_means_utf8() -> None:
    assert decode_html(b'<meta charset="utf-16"><p>x')[1] == "utf-8"


def test_meta_after_the_first_1024_bytes_is_not_seen() -> None:
    html = b"<!--" + b"x" * 1100 + b'--><meta charset="koi8-r">'
    assert decode_html(html)[1] == "utf-8"
