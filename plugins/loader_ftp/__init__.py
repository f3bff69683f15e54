"""The built-in FTP protocol plugin for loader (RFC 959, URLs per RFC 1738).

Registered through the ``loader`` entry-point group exactly as a third-party
plugin is (``ftp = "loader_ftp"``).  It provides:

* a protocol handler for ``ftp://`` and ``ftps://`` (explicit FTPS: ``AUTH
  TLS``, ``PBSZ 0``, ``PROT P``, certificate verified unless the loader's
  ``verify`` is false), natively on anyio streams (asyncio and trio):
  passive mode (``EPSV``, then ``PASV`` whose address is never trusted),
  binary transfers, ``SIZE``, ``REST`` resume, listings (``MLSD``, else
  ``LIST`` in Unix or DOS style, else ``NLST``), pooled control connections,
  and a ``CTL_RESPONSE_RECEIVED`` event for every control reply;
* directories as pages: a listing is an ``ftp-listing`` document (JSON Lines,
  one entry per line) whose images and sounds are requisites;
* ``loader ftp ls|mkdir|rmdir|rm|mv|put|get|pwd``;
* a library API, :class:`FtpSession`: WinINet's FTP functions (create and
  remove directory, delete, rename, find files, get / put / open file, get and
  set the current directory), each an operation reporting events with the
  caller's context;
* the I/O-free pieces it is built from: :class:`ReplyParser`,
  :func:`build_command`, :class:`FtpURL`, the listing parsers.
"""

from typing import TYPE_CHECKING as _TYPE_CHECKING

from loader._lazy import lazy_exports as _lazy_exports

from ._plugin import loader_add_commands, loader_extract, loader_protocol, loader_schemes

# `loader --help` loads every plugin: names are imported on first use (PEP 562).
_EXPORTS = {
    "ANONYMOUS": "._url",
    "CRLFDecoder": "._text",
    "Entry": "._listing",
    "FtpFile": "._session",
    "FtpHandler": "._handler",
    "FtpSession": "._session",
    "FtpURL": "._url",
    "LISTING_CONTENT_TYPE": "._listing",
    "LineSplitter": "._listing",
    "MAX_LISTING_LINE": "._listing",
    "Reply": "._reply",
    "ReplyParser": "._reply",
    "SCHEMES": "._plugin",
    "Source": "._session",
    "build_command": "._commands",
    "check_argument": "._commands",
    "content_type_for": "._handler",
    "directory_base": "._extract",
    "dump_listing": "._listing",
    "extract_listing": "._extract",
    "kind_for_name": "._listing",
    "load_listing": "._listing",
    "netrc_login": "._url",
    "parse_epsv": "._commands",
    "parse_features": "._commands",
    "parse_list": "._listing",
    "parse_list_line": "._listing",
    "parse_mlsd": "._listing",
    "parse_mlsd_line": "._listing",
    "parse_nlst": "._listing",
    "parse_nlst_line": "._listing",
    "parse_pasv": "._commands",
    "parse_pwd": "._commands",
    "parse_size": "._commands",
    "path_to_url": "._url",
    "show_command": "._commands",
}

if _TYPE_CHECKING:
    from ._commands import (
        build_command,
        check_argument,
        parse_epsv,
        parse_features,
        parse_pasv,
        parse_pwd,
        parse_size,
        show_command,
    )
    from ._extract import directory_base, extract_listing
    from ._handler import FtpHandler, content_type_for
    from ._listing import (
        LISTING_CONTENT_TYPE,
        MAX_LISTING_LINE,
        Entry,
        LineSplitter,
        dump_listing,
        kind_for_name,
        load_listing,
        parse_list,
        parse_list_line,
        parse_mlsd,
        parse_mlsd_line,
        parse_nlst,
        parse_nlst_line,
    )
    from ._plugin import SCHEMES
    from ._reply import Reply, ReplyParser
    from ._session import FtpFile, FtpSession, Source
    from ._text import CRLFDecoder
    from ._url import ANONYMOUS, FtpURL, netrc_login, path_to_url

__all__ = [
    "ANONYMOUS",
    "LISTING_CONTENT_TYPE",
    "MAX_LISTING_LINE",
    "SCHEMES",
    "CRLFDecoder",
    "Entry",
    "FtpFile",
    "FtpHandler",
    "FtpSession",
    "FtpURL",
    "LineSplitter",
    "Reply",
    "ReplyParser",
    "Source",
    "build_command",
    "check_argument",
    "content_type_for",
    "directory_base",
    "dump_listing",
    "extract_listing",
    "kind_for_name",
    "load_listing",
    "netrc_login",
    "parse_epsv",
    "parse_features",
    "parse_list",
    "parse_list_line",
    "parse_mlsd",
    "parse_mlsd_line",
    "parse_nlst",
    "parse_nlst_line",
    "parse_pasv",
    "parse_pwd",
    "parse_size",
    "path_to_url",
    "show_command",
]

# The hook implementations must be attributes of this module for pluggy to
# find them; they are not part of the library API.
_HOOKS = (loader_add_commands, loader_extract, loader_protocol, loader_schemes)

# No __dir__: pluggy looks at every name dir() lists, which would import them all.
__getattr__, _ = _lazy_exports(__name__, _EXPORTS, __all__)
