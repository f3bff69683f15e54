"""Resolving the URL text found in documents."""

from __future__ import annotations

import pytest

from loader.discovery.urls import MAX_URL_LENGTH, Resolver, resolve

BASE = "http://example.test/dir/page.html"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("x.png", "http://example.test/dir/x.png"),
        ("/x.png", "http://example.test/x.png"),
        ("../x.png", "http://example.test/x.png"),
        ("./a/./b/../x.png", "http://example.test/dir/a/x.png"),
        ("//cdn.example.net/x.png", "http://cdn.example.net/x.png"),
        ("https://other.example/x.png", "https://other.example/x.png"),
        ("?v=2", "http://example.test/dir/page.html?v=2"),
        ("  \n x.png \t ", "http://example.test/dir/x.png"),
        ("x\n.p\tng", "http://example.test/dir/x.png"),
        ("x.png#frag", "http://example.test/dir/x.png"),
        ("a b.png", "http://example.test/dir/a%20b.png"),
        ("a%20b.png", "http://example.test/dir/a%20b.png"),
        ("\\\\evil.example\\x.png", "http://evil.example/x.png"),
        ("http:same-scheme.png", "http://example.test/dir/same-scheme.png"),
        ("HTTPS://CDN.Example.NET:443/X.png", "https://cdn.example.net/X.png"),
        ("http://example.test:80/x", "http://example.test/x"),
        ("http://example.test:8080/x", "http://example.test:8080/x"),
        ("ftp://files.example/pub/x.gif", "ftp://files.example/pub/x.gif"),
        ("gopher://g.example/I/x.gif", "gopher://g.example/I/x.gif"),
        ("data:image/png;base64,AAAA", "data:image/png;base64,AAAA"),
        ("ünïcode.png", "http://example.test/dir/ünïcode.png"),
        ("x\x00y.png", "http://example.test/dir/x%00y.png"),
    ],
)
def test_resolves(raw: str, expected: str) -> None:
    assert resolve(raw, BASE) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "#top",
        " #frag",
        "javascript:alert(1)",
        " JavaScript:void(0)",
        "vbscript:x",
        "about:blank",
        "blob:http://example.test/1",
        "mailto:a@example.test",
        "tel:+1",
        "http://[::1",
        "http://host:99999/",
        "http://host:port/",
        "http://",
        "https:///x",
        "file:///etc/passwd",
    ],
)
def test_ignores(raw: str) -> None:
    assert resolve(raw, BASE) is None


def test_file_urls_only_from_file_documents() -> None:
    assert resolve("file:///tmp/x.png", "file:///tmp/page.html") == "file:///tmp/x.png"
    assert resolve("x.png", "file:///tmp/page.html") == "file:///tmp/x.png"
    assert (
        resolve("x.png", "http://example.test/", document_scheme="http")
        == "http://example.test/x.png"
    )


def test_plugin_schemes_resolve_relative_references() -> None:
    assert (
        resolve("img/x.gif", "gemini://g.example/dir/page.gmi")
        == "gemini://g.example/dir/img/x.gif"
    )
    assert resolve("/x.gif", "gopher://g.example:70/1/dir") == "gopher://g.example:70/x.gif"


def test_over_long_urls_are_ignored() -> None:
    assert resolve("a" * (MAX_URL_LENGTH + 1), BASE) is None
    assert resolve("data:," + "a" * (MAX_URL_LENGTH + 1), BASE) is not None


def test_fast_path_agrees_with_the_general_path() -> None:
    fast = Resolver("http://example.test/dir/page.html")
    for raw in ["x.png", "/x.png", "a/b(1).png", "x%41.png", "~u/x.png", "a,b.png", "a=1&b.png"]:
        assert fast(raw) == fast._resolve(raw), raw
