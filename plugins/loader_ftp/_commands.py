"""Building FTP commands and reading the replies that carry values, without I/O.

Every argument passes :func:`check_argument` before anything is sent: a CR or
LF inside a path would end the command early and let the rest of the path run
as a second command (command injection), so it is refused outright.
"""

from __future__ import annotations

import re

from loader import InvalidURL, ProtocolError

from ._reply import Reply

__all__ = [
    "build_command",
    "check_argument",
    "parse_epsv",
    "parse_features",
    "parse_pasv",
    "parse_pwd",
    "parse_size",
    "show_command",
]

_VERB = re.compile(r"[A-Z]{3,4}")


def check_argument(arg: str, *, url: str | None = None) -> str:
    """Return ``arg`` unchanged, or raise :class:`~loader.InvalidURL` if it holds CR, LF or NUL."""
    for bad, name in (("\r", "CR"), ("\n", "LF"), ("\0", "NUL")):
        if bad in arg:
            raise InvalidURL(f"{name} is not allowed in an FTP path or argument: {arg!r}", url=url)
    return arg


def build_command(verb: str, arg: str | None = None, *, url: str | None = None) -> bytes:
    """The wire bytes of one command: ``VERB[ arg]\\r\\n``.

    ``arg`` is sent as UTF-8 (undecodable bytes kept, see
    :func:`~loader_ftp._reply.decode_text`); a Telnet IAC byte (0xFF) is doubled
    as RFC 959 asks.
    """
    if not _VERB.fullmatch(verb):
        raise ValueError(f"not an FTP command verb: {verb!r}")
    line = verb.encode("ascii")
    if arg is not None:
        check_argument(arg, url=url)
        line += b" " + arg.encode("utf-8", "surrogateescape").replace(b"\xff", b"\xff\xff")
    return line + b"\r\n"


def show_command(verb: str, arg: str | None = None) -> str:
    """The command as events and logs show it: a password is never shown."""
    if arg is None:
        return verb
    if verb in ("PASS", "ACCT"):
        return f"{verb} ****"
    return f"{verb} {arg}".encode("utf-8", "surrogateescape").decode("utf-8", "replace")


_PASV = re.compile(r"(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3})")


def parse_pasv(reply: Reply) -> tuple[str, int]:
    """The ``(host, port)`` of a 227 reply: ``227 Entering Passive Mode (h1,h2,h3,h4,p1,p2)``.

    The host is returned for comparison only: callers connect to the control
    connection's peer whatever it says.
    """
    match = _PASV.search(reply.text)
    if reply.code != 227 or match is None:
        raise ProtocolError(f"unreadable PASV reply: {reply}")
    numbers = [int(n) for n in match.groups()]
    if any(n > 255 for n in numbers):
        raise ProtocolError(f"PASV reply out of range: {reply}")
    port = numbers[4] * 256 + numbers[5]
    if port == 0:
        raise ProtocolError(f"PASV reply with port 0: {reply}")
    return ".".join(map(str, numbers[:4])), port


_EPSV = re.compile(r"\(([\x21-\x7e])\1\1(\d{1,5})\1\)")


def parse_epsv(reply: Reply) -> int:
    """The port of a 229 reply: ``229 Entering Extended Passive Mode (|||port|)`` (RFC 2428)."""
    match = _EPSV.search(reply.text)
    if reply.code != 229 or match is None:
        raise ProtocolError(f"unreadable EPSV reply: {reply}")
    port = int(match.group(2))
    if not 0 < port < 65536:
        raise ProtocolError(f"EPSV reply out of range: {reply}")
    return port


def parse_pwd(reply: Reply) -> str:
    """The directory named by a 257 reply: ``257 "/a ""quoted"" dir" is current``.

    Inside the quotes a doubled quote stands for one (RFC 959 appendix II).
    A reply without quotes (some MKD replies) yields its first word.
    """
    text = reply.lines[0]
    if not text.startswith('"'):
        word = text.split(" ", 1)[0]
        if not word:
            raise ProtocolError(f"unreadable directory reply: {reply}")
        return word
    out: list[str] = []
    i = 1
    while i < len(text):
        ch = text[i]
        if ch == '"':
            if text[i + 1 : i + 2] == '"':
                out.append('"')
                i += 2
                continue
            return "".join(out)
        out.append(ch)
        i += 1
    raise ProtocolError(f"unterminated directory name in reply: {reply}")


def parse_size(reply: Reply) -> int | None:
    """The size in a ``213 n`` reply to SIZE (RFC 3659), or ``None`` if it holds no number."""
    value = reply.text.strip().split(" ", 1)[0]
    return int(value) if reply.code == 213 and value.isdigit() else None


def parse_features(reply: Reply) -> dict[str, str]:
    """FEAT reply (RFC 2389) to ``{"MLST": "type*;size*;…", "UTF8": "", …}``.

    Feature names are upper-cased; a refused FEAT (5xx) yields ``{}``.
    """
    if reply.code != 211:
        return {}
    features: dict[str, str] = {}
    for line in reply.lines[1:-1]:
        line = line.strip()
        if not line:
            continue
        name, _, params = line.partition(" ")
        features[name.upper()] = params.strip()
    return features
