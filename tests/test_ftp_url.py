"""FTP URLs (RFC 1738), credentials from ~/.netrc, and keeping passwords out of sight."""

from __future__ import annotations

from pathlib import Path

import pytest
from loader_ftp import ANONYMOUS, FtpHandler, FtpURL, netrc_login, path_to_url

from loader import InvalidURL


def test_plain_url() -> None:
    url = FtpURL.parse("ftp://ftp.example.org/pub/file.txt")
    assert (url.scheme, url.host, url.port, url.user, url.password) == (
        "ftp",
        "ftp.example.org",
        21,
        None,
        None,
    )
    assert url.path == "pub/file.txt"
    assert url.type is None and not url.directory


def test_credentials_port_and_percent_decoding() -> None:
    url = FtpURL.parse("ftp://al%40ice:p%40ss%3Aw%2Frd@Example.ORG:2121/my%20dir/caf%C3%A9.txt")
    assert url.user == "al@ice"
    assert url.password == "p@ss:w/rd"
    assert url.host == "example.org" and url.port == 2121
    assert url.path == "my dir/caf\u00e9.txt"


@pytest.mark.parametrize(
    ("url", "path", "directory", "ftype"),
    [
        ("ftp://h", "", True, None),
        ("ftp://h/", "", True, None),
        ("ftp://h/pub/", "pub", True, None),
        ("ftp://h/pub;type=d", "pub", True, "d"),
        ("ftp://h/pub/readme;type=a", "pub/readme", False, "a"),
        ("ftp://h/pub/x.bin;type=I", "pub/x.bin", False, "i"),
        ("ftp://h/%2Fetc/motd", "/etc/motd", False, None),
        ("ftp://h//etc/motd", "/etc/motd", False, None),
        ("ftp://h/what?.txt", "what?.txt", False, None),
        ("ftp://h/a%3Bb", "a;b", False, None),
    ],
)
def test_paths_and_types(url: str, path: str, directory: bool, ftype: str | None) -> None:
    parsed = FtpURL.parse(url)
    assert (parsed.path, parsed.directory, parsed.type) == (path, directory, ftype)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://h/a%0D%0ADELE%20x",
        "ftp://h/a%0Ab",
        "ftp://h/a\r\nDELE x",
        "ftp://h/a\nb",
        "ftp://us%0Aer:pw@h/",
        "ftp://h/a%00b",
        "http://h/",
        "ftp:///nohost",
        "ftp://h:99999/",
    ],
)
def test_invalid_urls(url: str) -> None:
    with pytest.raises(InvalidURL):
        FtpURL.parse(url)


def test_password_never_appears() -> None:
    url = FtpURL.parse("ftp://alice:hunter2@h/pub/")
    assert url.redacted == "ftp://alice@h/pub/"
    assert "hunter2" not in repr(url)
    assert "hunter2" not in url.url_for("pub/x")
    with pytest.raises(InvalidURL) as info:
        FtpURL.parse("ftp://alice:hunter2%0A@h/")
    assert "hunter2" not in str(info.value)


def test_url_for_paths() -> None:
    url = FtpURL.parse("ftp://alice:pw@h:2121/")
    assert url.url_for("pub/a b.txt") == "ftp://alice@h:2121/pub/a%20b.txt"
    assert url.url_for("/etc/motd") == "ftp://alice@h:2121/%2Fetc/motd"
    assert url.url_for("pub", directory=True) == "ftp://alice@h:2121/pub/"
    assert path_to_url("") == "/"
    assert url.login_url == "ftp://alice:pw@h:2121/"
    # What url_for produces parses back to the same path.
    assert FtpURL.parse(url.url_for("/a;b/c d")).path == "/a;b/c d"


NETRC = """\
machine files.example.org login carol password c4rol
machine other.example.org login dave password d4ve
default login guest password guest-pw
"""


@pytest.fixture
def netrc_file(tmp_path: Path) -> Path:
    path = tmp_path / "netrc"
    path.write_text(NETRC)
    path.chmod(0o600)
    return path


def test_netrc_lookup(netrc_file: Path) -> None:
    assert netrc_login("files.example.org", None, netrc_file) == ("carol", "c4rol")
    assert netrc_login("files.example.org", "carol", netrc_file) == ("carol", "c4rol")
    assert netrc_login("files.example.org", "zed", netrc_file) is None
    assert netrc_login("unknown.example.org", None, netrc_file) == ("guest", "guest-pw")
    assert netrc_login("h", None, netrc_file.parent / "missing") is None


def test_login_precedence(netrc_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETRC", str(netrc_file))
    handler = FtpHandler()
    assert handler.login_for(FtpURL.parse("ftp://u:p@files.example.org/")) == ("u", "p")
    assert handler.login_for(FtpURL.parse("ftp://files.example.org/")) == ("carol", "c4rol")
    assert handler.login_for(FtpURL.parse("ftp://carol@files.example.org/")) == ("carol", "c4rol")
    monkeypatch.setenv("NETRC", str(netrc_file.parent / "missing"))
    assert handler.login_for(FtpURL.parse("ftp://files.example.org/")) == ANONYMOUS
    assert handler.login_for(FtpURL.parse("ftp://zed@files.example.org/")) == ("zed", "")
