"""plain_origin: the scheme, host and port of a plain URL exactly as urlsplit gives them."""

from __future__ import annotations

import random
from urllib.parse import urlsplit

import pytest

from loader._scheduler import host_key
from loader._urls import plain_origin


def by_urlsplit(url: str) -> tuple[str, str, int | None] | str:
    try:
        parts = urlsplit(url)
        return parts.scheme, parts.hostname or "", parts.port
    except ValueError as exc:
        return f"error: {exc}"


PIECES = ["http", "HTTPS", "ftp", "gopher", "x-y+z.1", "1http", "", ":", "://", "//", "/", "?", "#", "@",
          "user:pw@", "[::1]", "[", "]", "Host.Example", "h", "127.0.0.1", "xn--bcher-kva.example", "%41",
          ":80", ":080", ":0", ":65535", ":65536", ":99999", ":123456", ":", ":x", " ", "\t", "\n",
          "/a/b", "?q=1", "#frag", "~", "_", "-", ".", "é", "ß", "\u3002", "\x00"]


def test_random_urls_agree_with_urlsplit() -> None:
    rng = random.Random(11)
    checked = 0
    for _ in range(30_000):
        url = "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 7)))
        if rng.random() < 0.5:
            url = rng.choice(["http://", "https://", "ftp://", "gopher://", "HTTP://"]) + url
        found = plain_origin(url)
        if found is not None:
            assert found == by_urlsplit(url), url
            checked += 1
    assert checked > 1000  # the fast path is taken often enough for this to mean something


@pytest.mark.parametrize("url, expected", [
    ("http://Example.COM/a", ("http", "example.com", None)),
    ("HTTPS://h:8443?x", ("https", "h", 8443)),
    ("http://h:080/", ("http", "h", 80)),
    ("http://h:0", ("http", "h", 0)),
    ("gopher://127.0.0.1:70/1/", ("gopher", "127.0.0.1", 70)),
])
def test_plain_urls(url: str, expected: tuple) -> None:
    assert plain_origin(url) == expected == by_urlsplit(url)


@pytest.mark.parametrize("url", [
    "http://user@h/", "http://[::1]/", "http://h:65536/", "http://h:123456/", " http://h/", "http://h /",
    "http://h%41/", "http:///p", "mailto:x@y", "http://h\t/", "http://bücher.example/",
])
def test_other_urls_are_left_to_urlsplit(url: str) -> None:
    assert plain_origin(url) is None


def test_host_key_is_the_same_either_way() -> None:
    urls = ["http://H:80/a", "http://h/b", "https://h:443/", "ftp://u:p@h:21/", "http://[::1]:8080/", "http://h:99999/"]
    for url in urls:
        try:
            parts = urlsplit(url)
            expected = f"{parts.scheme}://{(parts.hostname or '').lower()}:{parts.port or ''}"
        except ValueError:
            expected = url
        assert host_key(url) == expected
