"""FTP URLs (RFC 1738 section 3.2) and the credentials that go with them, without I/O
(except reading ``~/.netrc``).

``ftp://[user[:password]@]host[:port]/cwd1/…/name[;type=a|i|d]``

* Segments are percent-decoded; the path is relative to the login directory,
  and ``%2F`` at the start makes it absolute (``ftp://host/%2Fetc/motd`` is
  ``/etc/motd``).  Requests never ``CWD``: they send the whole path
  (curl's ``--ftp-method nocwd``), so a pooled connection always stays in its
  login directory.
* ``;type=a`` asks for an ASCII transfer (CRLF turned into LF), ``;type=i``
  (the default) for binary, ``;type=d`` for a directory listing.  A path that
  ends in ``/`` (or is empty) is a directory too.
* ``ftps://`` means *explicit* FTPS: the same port 21, upgraded with
  ``AUTH TLS`` (unlike curl, where ``ftps://`` is implicit TLS on port 990).
* Without a user name the login is anonymous, unless ``~/.netrc`` (or the file
  ``$NETRC`` names) has an entry for the host.
* Any CR, LF or NUL, raw or percent-encoded, makes the URL invalid.
"""

from __future__ import annotations

import netrc
import os
import re
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from loader import InvalidURL

from ._commands import check_argument

__all__ = ["ANONYMOUS", "FtpURL", "netrc_login", "path_to_url"]

#: Login used when neither the URL nor ``~/.netrc`` names one (RFC 1635).
ANONYMOUS = ("anonymous", "anonymous@")

DEFAULT_PORT = 21
_TYPE = re.compile(r";type=([aidAID])$")


@dataclass(frozen=True, slots=True)
class FtpURL:
    """A parsed ``ftp://`` or ``ftps://`` URL.

    ``path`` is the decoded server path without a trailing slash (``""`` for
    the login directory); ``user``/``password`` are ``None`` when the URL names
    none.  ``repr`` never shows the password.
    """

    url: str
    scheme: str
    host: str
    port: int
    user: str | None
    password: str | None
    path: str
    type: str | None
    directory: bool

    def __repr__(self) -> str:
        return f"FtpURL({self.redacted!r})"

    @classmethod
    def parse(cls, url: str) -> FtpURL:
        """Parse ``url``; raise :class:`~loader.InvalidURL` if it is not a usable FTP URL."""
        for bad, name in (("\r", "CR"), ("\n", "LF"), ("\0", "NUL"), ("\t", "TAB")):
            if bad in url:
                raise InvalidURL(f"{name} is not allowed in an FTP URL", url=_redact_raw(url))
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise InvalidURL(f"cannot parse FTP URL: {exc}", url=_redact_raw(url)) from exc
        scheme = parts.scheme.lower()
        if scheme not in ("ftp", "ftps"):
            raise InvalidURL(f"not an FTP URL (scheme {scheme!r})", url=_redact_raw(url))
        host = parts.hostname
        if not host:
            raise InvalidURL("FTP URL without a host", url=_redact_raw(url))
        raw_path = parts.path
        if parts.query:
            # RFC 1738 gives FTP no query: a "?" is part of the name.
            raw_path += "?" + parts.query
        ftype: str | None = None
        match = _TYPE.search(raw_path)
        if match:
            ftype = match.group(1).lower()
            raw_path = raw_path[: match.start()]
        segments = raw_path.split("/")[1:] if raw_path.startswith("/") else raw_path.split("/")
        directory = ftype == "d" or not segments or segments[-1] == ""
        if segments and segments[-1] == "":
            segments = segments[:-1]
        decoded = [unquote(s, errors="surrogateescape") for s in segments]
        path = "/".join(decoded)
        user = unquote(parts.username) if parts.username is not None else None
        password = unquote(parts.password) if parts.password is not None else None
        redacted = _redact_raw(url)
        for value in (path, user or "", password or ""):
            try:
                check_argument(value, url=redacted)
            except InvalidURL as exc:
                # The message would repeat the value, which may be the password.
                raise InvalidURL(
                    "CR, LF or NUL (percent-encoded) is not allowed in an FTP URL", url=redacted
                ) from exc
        return cls(
            url=url,
            scheme=scheme,
            host=host,
            port=port or DEFAULT_PORT,
            user=user or None,
            password=password,
            path=path,
            type=ftype,
            directory=directory,
        )

    @property
    def redacted(self) -> str:
        """The URL with any password removed: safe for messages, events and logs."""
        return _redact_raw(self.url)

    @property
    def origin(self) -> str:
        """``scheme://[user@]host[:port]`` without a password or path."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        netloc = host if self.port == DEFAULT_PORT else f"{host}:{self.port}"
        if self.user is not None:
            netloc = f"{quote(self.user, safe='')}@{netloc}"
        return f"{self.scheme}://{netloc}"

    @property
    def login_url(self) -> str:
        """The URL of the login directory, credentials included (for a session; never show it)."""
        return urlunsplit((self.scheme, urlsplit(self.url).netloc, "/", "", ""))

    def url_for(self, path: str, *, directory: bool = False) -> str:
        """The (password-free) URL of ``path`` on this server, relative to the login directory
        unless it starts with ``/``."""
        return self.origin + path_to_url(path, directory=directory)


def path_to_url(path: str, *, directory: bool = False) -> str:
    """The URL path (starting with ``/``) for a server path; ``/abs`` becomes ``/%2Fabs``."""
    absolute = path.startswith("/")
    parts = [quote(p, safe="", errors="surrogateescape") for p in path.strip("/").split("/") if p]
    text = "/".join(parts)
    if absolute:
        text = "%2F" + text
    if directory and text and not text.endswith("/"):
        text += "/"
    return "/" + text


def _redact_raw(url: str) -> str:
    """Drop the password from a URL's userinfo without trusting the URL to parse."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    end = len(rest)
    for stop in "/?#":
        pos = rest.find(stop)
        if pos >= 0:
            end = min(end, pos)
    netloc, tail = rest[:end], rest[end:]
    if "@" not in netloc:
        return url
    userinfo, _, hostport = netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}@{hostport}{tail}" if user else f"{scheme}://{hostport}{tail}"


def netrc_login(
    host: str, user: str | None, netrc_file: str | os.PathLike[str] | None = None
) -> tuple[str, str] | None:
    """The ``(login, password)`` ``~/.netrc`` has for ``host`` (and ``user``, if given).

    ``netrc_file`` defaults to ``$NETRC`` or ``~/.netrc``.  A missing or
    unreadable file, or one the standard library refuses (for example because
    others can read it), counts as no entry.
    """
    if netrc_file is None:
        netrc_file = os.environ.get("NETRC") or None
    try:
        # With no file named, the standard library reads ~/.netrc and refuses
        # one that others may read.
        entries = netrc.netrc(os.fspath(netrc_file) if netrc_file is not None else None)
    except (OSError, netrc.NetrcParseError):
        return None
    found = entries.authenticators(host)
    if found is None:
        return None
    login, _account, password = found
    if user is not None and login != user:
        return None
    return login, password or ""
