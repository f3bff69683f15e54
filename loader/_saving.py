"""Where bodies go: memory, a file written atomically, or the caller.

Safe names
    :func:`local_path` maps a URL to ``host/path`` under the output directory.
    Every path segment is percent-decoded and then made safe: ``.``/``..``
    segments are dropped, separators (``/`` and ``\\``), NUL, control and
    reserved characters become ``_``, Windows device names get a ``_`` prefix,
    over-long names are shortened with a hash, a query string becomes a short
    hash before the extension.  The result is checked to lie inside the output
    directory after resolving symlinks already there; a path that would escape
    raises :class:`~loader.SaveError` rather than being written.

    A name reads as it is stored: every character that is invisible or reorders
    the text around it (C0 and C1 controls, the bidirectional controls such as
    U+202E, zero-width and the other default-ignorable code points such as U+200B,
    U+2060, U+FEFF and variation selectors, line and paragraph separators) becomes
    ``_``, so ``a\\u202eb.png`` is saved as ``a_b.png``.  A name that starts with
    ``.`` gets a ``_`` in front (``.htaccess`` → ``_.htaccess``, ``.git`` →
    ``_.git``): a page cannot plant a hidden file or directory.  The host
    directory is the host's IDNA A-label, the name the request puts on the wire
    (``bücher.example`` → ``xn--bcher-kva.example``), never its Unicode form.
    These are pure functions of the URL: the same URL always gets the same name.

One name, a file or a directory
    ``/img`` (a file ``img``) and ``/img/a.png`` (a directory ``img/``) cannot
    both have their name.  As wget does when a directory stands where a file is
    to go, the later one is renamed, with the same ``-N`` numbering as names that
    clash (see :class:`PathAllocator`): a file whose name an earlier URL took as a
    directory becomes ``img-1``; a directory whose name an earlier URL took as a
    file becomes ``img-1/``, and every later URL below ``/img/`` follows it there.
    "Earlier" is the order a page asks for paths (its discovery order), so a page
    saves the same way every time, however its transfers interleave.  On disk
    (files of an earlier run, sinks without an allocator) :class:`FileSink` with
    a ``root`` applies the same rule: a file in the way of a directory makes it
    use the first of ``img-1/``, ``img-2/`` … that is a directory or free; a
    directory at a file's final name makes the file take the first free
    ``img-1``, ``img-2`` ….  A file once written is never moved or removed.

Atomic files
    :class:`FileSink` writes to a hidden temporary file in the destination
    directory (``.NAME.part-PID-N``), opened with ``O_EXCL|O_NOFOLLOW``, and
    renames it to the final name only when the body is complete.  A failed or
    cancelled transfer removes the temporary file; nothing ever sits under the
    final name half-written.  Existing files follow the ``exists`` policy:
    ``"overwrite"`` (default, replaced atomically), ``"skip"`` (not fetched
    again) or ``"unique"`` (``name-1.ext``, ``name-2.ext`` …).

    The sink opens its directory once when it starts (``O_DIRECTORY``, and
    ``O_NOFOLLOW`` under a ``root``) and creates, renames and removes its files
    relative to that descriptor, so a directory swapped for a symlink during the
    transfer neither leaves the temporary file behind nor redirects the write;
    at commit a directory that is no longer the one opened fails the transfer
    (its temporary removed) instead of reporting a path that holds something
    else.  A process killed outright cannot remove its temporary file: the next
    sink that starts in the directory removes every ``.NAME.part-PID-N`` whose
    process no longer exists (never one of a live process, nor of this one).

Resuming (``resume=True``, the command's ``--continue``)
    The body goes to ``NAME.part`` beside the target, a visible, fixed name (as
    a browser's ``.crdownload``) that the next run finds: it is kept when the
    transfer fails or is cancelled, :meth:`FileSink.resume_offset` reports its
    size, and the next :meth:`FileSink.start` at that offset appends to it.
    Only the complete body is renamed to the final name.  Without a partial file
    an existing file under the final name is continued, as ``wget -c`` does (it
    is copied into ``NAME.part`` first: the final name changes only when
    complete).  :meth:`FileSink.remember_response` records the URL and the
    response's validator in ``NAME.part.json``; :meth:`FileSink.resume_headers`
    gives the ``If-Range`` for the next request, so a changed resource is sent
    whole instead of being appended to the old bytes.  A partial file is locked
    (``flock``) while written: two runs never append to the same one.  Without
    ``resume`` nothing is left behind, and a ``NAME.part`` of an earlier
    interrupted ``--continue`` run of the same URL (its record says so) is removed
    once the file is complete.

Modes
    Directories are created ``0o755`` and files ``0o644`` whatever the umask.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import io
import itertools
import json
import os
import re
import shutil
import stat
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import SplitResult, unquote, urlsplit

from anyio import to_thread

from ._errors import SaveError, SizeLimitExceeded

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "Directories",
    "ExistsPolicy",
    "FileSink",
    "MemorySink",
    "PathAllocator",
    "local_path",
    "make_directories",
    "write_file",
]

ExistsPolicy = Literal["overwrite", "skip", "unique"]

#: Replaced by ``_``: separators and characters Windows forbids, C0 and C1 controls,
#: lone surrogates, and every character that is invisible or reorders text: Unicode's
#: Default_Ignorable_Code_Point set (soft hyphen, U+034F, U+061C, Hangul fillers,
#: Khmer and Mongolian format characters, U+200B-U+200F, U+202A-U+202E, U+2060-U+206F,
#: variation selectors, U+FEFF, tag characters …) plus U+2028/U+2029.  A fixed list,
#: not unicodedata's categories: the same name on every Python.
_UNSAFE = re.compile(
    '[\x00-\x1f\x7f-\x9f<>:"|?*\\\\/'
    "\xad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8\ud800-\udfff"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff]"
)
_RESERVED = {"con", "prn", "aux", "nul"} | {f"{p}{i}" for p in ("com", "lpt") for i in range(1, 10)}
_MAX_NAME = 150  # bytes; leaves room for the temporary-file prefix and suffix under 255


def _short_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def safe_segment(segment: str) -> str:
    """One path segment made safe to use as a file or directory name ('' if nothing is left)."""
    return _clean(unquote(segment, errors="replace"))


def _clean(text: str) -> str:
    """``safe_segment`` of text already percent-decoded."""
    name = _UNSAFE.sub("_", text).strip()
    if name in ("", ".", ".."):
        return ""
    name = name.rstrip(". ") or "_"  # Windows drops trailing dots and spaces
    if name[0] == ".":
        name = "_" + name  # never a hidden file
    if name.split(".", 1)[0].lower() in _RESERVED:
        name = "_" + name
    if len(name.encode("utf-8", "surrogatepass")) > _MAX_NAME:
        stem, ext = os.path.splitext(name)
        ext = ext if len(ext) <= 16 else ""
        keep = stem.encode("utf-8", "surrogatepass")[: _MAX_NAME - 10 - len(ext)]
        name = keep.decode("utf-8", "ignore") + "-" + _short_hash(name) + ext
    return name


def _a_label(host: str) -> str:
    """The host as ASCII: IDNA (UTS 46, as httpx puts it on the wire), else each
    non-ASCII label as raw punycode (a host IDNA rejects still gets one ASCII name)."""
    if host.isascii():
        return host
    try:
        import idna  # lazily: only a non-ASCII host needs it

        return idna.encode(host, uts46=True).decode("ascii")
    except (ImportError, UnicodeError, ValueError):
        return ".".join(
            label if label.isascii() else "xn--" + label.encode("punycode").decode("ascii")
            for label in host.split(".")
        )


# Every URL of a page repeats its host and, mostly, a few directories: making those
# safe once (not once per file) keeps relative_path to one urlsplit and one
# safe_segment per URL.  Both are pure functions of their arguments; the caches are
# bounded so a long-running loader does not grow without limit.


@functools.lru_cache(maxsize=256)
def _host_directory(scheme: str, netloc: str) -> str:
    """The first segment of a saved path: the host's A-label, its port, and the scheme unless HTTP(S)."""
    parts = SplitResult(scheme, netloc, "", "", "")  # hostname and port depend on the netloc only
    try:
        port = parts.port
    except ValueError:
        port = None
    host = _a_label(unquote(parts.hostname or "local", errors="replace").lower())
    host = _clean(host + (f"_{port}" if port else "")) or "_"
    if scheme not in ("http", "https", ""):
        host = f"{scheme}_{host}"
    return host


@functools.lru_cache(maxsize=1024)
def _safe_directories(raw: str) -> tuple[str, ...]:
    """The safe, non-empty segments of a URL path's directory part (``/a/b`` of ``/a/b/c.png``)."""
    return tuple(s for s in map(safe_segment, raw.split("/")) if s)


def relative_path(url: str, *, index: str = "index.html") -> str:
    """The ``host/path`` a URL is saved under, relative to the output directory."""
    if url.startswith("data:"):
        return f"data/{_short_hash(url)}"
    scheme, netloc, raw, query = _split_url(url)
    directories, _, last = raw.rpartition("/")
    segments = list(_safe_directories(directories))
    name = safe_segment(last)
    if name:
        segments.append(name)
    if not segments or raw.endswith("/"):
        segments.append(index)
    if query:
        stem, ext = os.path.splitext(segments[-1])
        segments[-1] = f"{stem}.q-{_short_hash(query)}{ext}"
    return "/".join([_host_directory(scheme, netloc), *segments])


#: An http(s) URL whose parts urlsplit would find by these same rules: scheme in lower
#: case, netloc up to the first ``/?#`` (no IPv6 brackets: urlsplit validates those),
#: path, query up to the fragment.  Only for printable ASCII text (urlsplit strips
#: leading blanks and drops tabs and newlines anywhere; non-ASCII netlocs are checked).
_SIMPLE_URL = re.compile(r"(https?)://([^/?#\[\]]*)(/[^?#]*)?(?:\?([^#]*))?(?:#.*)?")


def _split_url(url: str) -> tuple[str, str, str, str]:
    """``urlsplit(url)``'s scheme, netloc, path and query (cheaply for a plain http(s) URL)."""
    if url.isascii() and url.isprintable():
        match = _SIMPLE_URL.fullmatch(url)
        if match is not None:
            scheme, netloc, path, query = match.groups()
            return scheme, netloc, path or "", query or ""
    parts = urlsplit(url)
    return parts.scheme, parts.netloc, parts.path, parts.query


def _inside(root: Path, path: Path) -> bool:
    root_real = os.path.realpath(root)
    real = os.path.realpath(path)
    return real == root_real or real.startswith(root_real.rstrip(os.sep) + os.sep)


def _ensure_inside(root: Path | None, path: Path, url: str) -> None:
    """Raise ``SaveError`` when ``path`` (symlinks resolved) would lie outside ``root``."""
    if root is not None and not _inside(root, path):
        raise SaveError(f"refusing to write outside {root}: {path}", url=url)


def local_path(url: str, root: Path, *, index: str = "index.html") -> Path:
    """The safe destination for ``url`` under ``root``; raises ``SaveError`` if it would escape."""
    path = root / relative_path(url, index=index)
    _ensure_inside(root, path, url)
    return path


class PathAllocator:
    """Gives each URL of one page its own path, even when two URLs map to the same name.

    Names compare case-insensitively (case-insensitive disks merge ``Foo`` and
    ``foo``); a name taken by a file is never used for a directory nor the other
    way round: the later comer is renamed ``-N`` (see the module docstring).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._taken: set[str] = set()  # files, by their lower-cased text
        #: Directories, by their lower-cased text: the lower-cased relative text
        #: (``host/dir``) that asked for each, so ``dir`` and ``DIR`` share one (as a
        #: case-insensitive disk would) but a renamed ``img-1`` is never merged with
        #: a URL's own ``/img-1/``.
        self._dirs: dict[str, str] = {}
        self._by_url: dict[str, Path] = {}
        #: ``(root / "host/dir", its text as a prefix)`` by ``"host/dir"``: pathlib then
        #: parses only the file name of each path, not the whole of
        #: ``root / "host/dir/name"`` again, and the text of ``directory / name`` (the
        #: key of ``_taken``) is ``prefix + name`` without pathlib formatting it.
        #: Filled level by level: ``"host"``, ``"host/dir"``, ``"host/dir/sub"``.
        self._directories: dict[str, tuple[Path, str]] = {}

    def _directory(self, relative: str) -> tuple[Path, str]:
        entry = self._directories.get(relative)
        if entry is None:
            parent_relative, _, segment = relative.rpartition("/")
            if parent_relative:
                parent, parent_prefix = self._directory(parent_relative)
            else:
                parent = self.root
                parent_prefix = os.fspath(parent / "x")[:-1]
            asked = relative.lower()
            name, n = segment, 1
            while True:
                key = (parent_prefix + name).lower()
                if key not in self._taken and self._dirs.setdefault(key, asked) == asked:
                    break
                name, n = f"{segment}-{n}", n + 1  # a file's name, or another directory's
            directory = parent / name
            # What pathlib puts before a plain name joined to the directory: "dir/",
            # "/" for the root, "" for "." (so the text of the child is just the name).
            entry = self._directories[relative] = (directory, os.fspath(directory / "x")[:-1])
        return entry

    def path_for(self, url: str, *, suffix: str = "", index: str = "index.html") -> Path:
        """The path reserved for ``url`` (the same one every time it is asked for)."""
        path = self._by_url.get(url)
        if path is not None:
            return path
        # Lexically inside (safe segments only); symlinks are checked when a sink
        # writes, once per directory, so a thousand files cost two realpath calls.
        relative, _, name = relative_path(url, index=index).rpartition("/")
        directory, prefix = self._directory(relative)
        if not suffix and _plain_name(name):
            path = directory / name
            key = (prefix + name).lower()  # str(path).lower(), without formatting it
        else:  # a suffix, or an odd name (".", a separator in index=): pathlib decides
            path = directory / name
            if suffix and not path.name.lower().endswith(suffix):
                path = path.with_name(path.name + suffix)
            key = os.fspath(path).lower()
        candidate, n = path, 1
        while key in self._taken or key in self._dirs:
            stem, ext = os.path.splitext(path.name)
            candidate = path.with_name(f"{stem}-{n}{ext}")
            key = os.fspath(candidate).lower()
            n += 1
        self._taken.add(key)
        self._by_url[url] = candidate
        return candidate


def _plain_name(name: str) -> bool:
    """A name pathlib takes as one ordinary part (no separator, drive, ``.`` or ``..``)."""
    return (
        name not in ("", ".", "..")
        and os.sep not in name
        and (os.altsep is None or os.altsep not in name)
        and (os.name != "nt" or ":" not in name)
    )


class _Counted:
    """Counts the bytes a sink takes and enforces ``max_body``."""

    url: str
    max_body: int | None
    size: int
    #: The error's text once the cap is passed (``{cap}``: the cap as a person reads it).
    over_cap = "body larger than the cap of {cap} (--max-filesize, Limits.max_body)"

    def _count(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.max_body is not None and self.size > self.max_body:
            from ._display import size_text

            raise SizeLimitExceeded(self.over_cap.format(cap=size_text(self.max_body)), url=self.url)


class MemorySink(_Counted):
    """Keeps the body in memory, up to ``max_body`` bytes.

    The bytes gather in one ``io.BytesIO``, whose ``getvalue()`` hands its buffer
    over without a copy: a body is held once, not as its chunks and then their join.
    """

    def __init__(self, url: str, max_body: int | None = None) -> None:
        self.url = url
        self.max_body = max_body
        self._buffer = io.BytesIO()
        self.size = 0

    def start(self, offset: int) -> None:
        self._buffer = io.BytesIO()
        self.size = 0

    async def write(self, chunk: bytes) -> None:
        self._count(chunk)
        self._buffer.write(chunk)

    def commit(self) -> bytes:
        body = self._buffer.getvalue()
        self._buffer = io.BytesIO()
        return body

    def resume_headers(self) -> dict[str, str]:
        """Nothing to resume in memory: no headers."""
        return {}

    def remember_response(self, headers: Mapping[str, str]) -> None:
        """Nothing to record for a body in memory."""

    def abort(self) -> None:
        self._buffer = io.BytesIO()


class CallerSink(MemorySink):
    """Hands each chunk to the caller's ``async def write(chunk)`` (or sync function)."""

    def __init__(self, url: str, write: Callable[[bytes], Awaitable[None] | None], max_body: int | None = None) -> None:
        super().__init__(url, max_body)
        self._write = write

    async def write(self, chunk: bytes) -> None:
        self._count(chunk)
        result = self._write(chunk)
        if result is not None:
            await result

    def commit(self) -> None:  # type: ignore[override]
        return None  # the caller has every byte already


#: A chunk at least this large is written from a worker thread: meanwhile the event
#: loop goes on taking other connections' bytes, and copying into the file (the slow
#: part of a large download) runs on another core.  A smaller chunk is written in
#: place: handing it over (~50 µs) would cost more than the write.
THREAD_WRITE_MIN = 64 * 1024

_TMP_IDS = itertools.count(1)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_BINARY = getattr(os, "O_BINARY", 0)
_TMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC | _BINARY
#: A partial file is opened again (no ``O_EXCL``); ``O_NONBLOCK`` so that a FIFO
#: planted under its name fails at once instead of blocking the open.
_PART_FLAGS = os.O_WRONLY | os.O_CREAT | _NOFOLLOW | _CLOEXEC | _BINARY | getattr(os, "O_NONBLOCK", 0)
_SIDECAR_FLAGS = _PART_FLAGS | os.O_TRUNC
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _CLOEXEC
#: Files are made and removed relative to their open directory where the platform can.
_DIR_FD = {os.open, os.unlink, os.rename, os.link} <= os.supports_dir_fd and os.scandir in os.supports_fd
FILE_MODE = 0o644
DIRECTORY_MODE = 0o755
#: A temporary file of a non-resuming sink: ``.NAME.part-PID-N``.
_TEMPORARY = re.compile(r"\.(.+)\.part-([0-9]+)-[0-9]+", re.DOTALL)


def _split(text: str) -> tuple[str, str, str]:
    """Of a path's text: ``os.path.dirname``, ``os.path.join(dirname, "")`` (what a name
    beside it follows) and ``os.path.basename`` (the Path's ``.name``)."""
    if os.sep == "/" and os.altsep is None:  # posixpath's rules, without its generality
        cut = text.rfind("/") + 1
        head, name = text[:cut], text[cut:]
        directory = head.rstrip("/") or head
    else:
        directory, name = os.path.split(text)
    beside = directory if not directory or directory.endswith(os.sep) else directory + os.sep
    return directory, beside, name


def _no_mode(fd: int, mode: int) -> None:
    """Where there is no ``fchmod`` (Windows has no such modes)."""


#: The umask may take bits off (0o600 under 077) or leave them (0o777 directories under
#: 000 when made without a mode): the mode is set, not left to it.
_fchmod = os.fchmod if hasattr(os, "fchmod") else _no_mode


@functools.cache
def umask_keeps_file_mode() -> bool:
    """True when the process's umask leaves ``FILE_MODE`` whole, so that a file opened
    with that mode has it without an ``fchmod`` (one system call a file fewer).

    Read once a process from ``/proc/self/status`` (Linux): setting the umask to learn
    it would change it for every thread meanwhile.  False where it cannot be read.  A
    program embedding the loader that narrows its umask later clears the answer with
    ``umask_keeps_file_mode.cache_clear()``.
    """
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"Umask:"):
                    return FILE_MODE & ~int(line.split()[1], 8) == FILE_MODE
    except (OSError, ValueError, IndexError):
        pass
    return False


def _mkdir(path: str) -> None:
    """``os.mkdir`` with mode 0o755 whatever the umask (set through the new directory
    itself, opened without following a symlink that might have replaced it)."""
    os.mkdir(path, DIRECTORY_MODE)
    if hasattr(os, "fchmod"):
        fd = os.open(path, _DIR_FLAGS | _NOFOLLOW)
        try:
            os.fchmod(fd, DIRECTORY_MODE)
        finally:
            os.close(fd)


def _make_all(path: str) -> None:
    """``os.makedirs(path, exist_ok=True)`` with ``_mkdir``'s mode (a file in the way
    fails as mkdir does)."""
    try:
        _mkdir(path)
    except FileNotFoundError:
        parent = os.path.dirname(path.rstrip(os.sep))
        if not parent or parent == path:
            raise
        _make_all(parent)
        _make_all(path)
    except FileExistsError:
        if not os.path.isdir(path):
            raise


def make_directories(path: Path) -> None:
    """Create ``path`` and its missing parents, each ``0o755`` whatever the umask
    (``Path.mkdir(parents=True, exist_ok=True)`` leaves the mode to the umask)."""
    _make_all(os.fspath(path))


def _make_level(parent: str, segment: str) -> str:
    """The directory ``segment`` in ``parent`` (made if missing), or, when something
    other than a directory holds that name, the first of ``segment-1``, ``segment-2`` …
    that is a directory or free."""
    for n in range(100):
        path = os.path.join(parent, segment if n == 0 else f"{segment}-{n}")
        try:
            _mkdir(path)
        except FileExistsError:
            if os.path.isdir(path):
                return path
            continue
        return path
    raise FileExistsError(errno.EEXIST, f"no free directory name for {segment} in {parent}")


def _make_directories(directory: str, root: str | None) -> str | None:
    """Make ``directory``; returns None, or, when a file below ``root`` stood in the way
    of one of its levels, the directory used instead (see the module docstring)."""
    if root is not None:
        relative = os.path.relpath(directory, root)
        if relative != os.curdir and relative != os.pardir and not relative.startswith(os.pardir + os.sep):
            _make_all(root)
            made = root
            for segment in relative.split(os.sep):
                made = _make_level(made, segment)
            return None if made == os.path.join(root, relative) else made
    _make_all(directory or os.curdir)
    return None


def _process_gone(pid: int) -> bool:
    """True only when no process ``pid`` exists (so its temporary files are orphans)."""
    if os.name != "posix":
        return False  # os.kill(pid, 0) would not merely ask
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # PermissionError: it exists, someone else's
    return False


def _regular_size(path: str) -> int:
    """The size of ``path`` if it is a regular file (not followed if a symlink), else 0."""
    try:
        st = os.lstat(path)
    except OSError:
        return 0
    return st.st_size if stat.S_ISREG(st.st_mode) else 0


def _is_regular(path: str) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


#: Directories this process has swept of dead processes' temporary files (see
#: ``FileSink._sweep``): a process-wide fact, since a temporary file names its PID.
_SWEPT: set[str] = set()


class Directories(set[str]):
    """The directories one page run's sinks checked (a ``checked`` set), and the
    directory fds they opened, kept open for the next file in the same directory.

    A sink opens its directory, checks it and fstats it once per file otherwise; a page
    of a thousand images in three directories needs three.  At most ``MAX_OPEN`` are
    kept (others are opened per file, as without this); :meth:`close` (the page run's
    end) closes them.  A directory found replaced is forgotten, its fd closed only at
    :meth:`close` (a sink still writing may hold it).
    """

    MAX_OPEN = 64

    def __init__(self) -> None:
        super().__init__()
        #: ``os.path.dirname`` text -> (fd, (st_dev, st_ino)) of the directory opened.
        self.fds: dict[str, tuple[int, tuple[int, int]]] = {}
        self._retired: list[int] = []
        self.closed = False
        #: The umask leaves files their mode (see umask_keeps_file_mode).
        self.mode_kept = umask_keeps_file_mode()

    def keep(self, key: str, fd: int, dir_id: tuple[int, int]) -> bool:
        """Keep ``fd`` for ``key``; False (the caller closes it itself) when full or closed."""
        if self.closed or len(self.fds) >= self.MAX_OPEN or key in self.fds:
            return False
        self.fds[key] = (fd, dir_id)
        return True

    def forget(self, key: str) -> None:
        held = self.fds.pop(key, None)
        if held is not None:
            self._retired.append(held[0])

    def close(self) -> None:
        self.closed = True
        fds = [fd for fd, _ in self.fds.values()] + self._retired
        self.fds.clear()
        self._retired.clear()
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass

    def __del__(self) -> None:  # unreachable, so no sink holds one: a run that raised
        self.close()



class FileSink(_Counted):
    """Streams the body into a temporary file and renames it into place when complete.

    With ``resume`` the body goes to ``NAME.part`` instead, kept for the next run
    when the transfer is interrupted (see the module docstring).
    """

    def __init__(
        self,
        url: str,
        path: Path,
        *,
        root: Path | None = None,
        exists: ExistsPolicy = "overwrite",
        max_body: int | None = None,
        resume: bool = False,
        checked: set[str] | None = None,
    ) -> None:
        self.url = url
        #: Directories already created, verified inside ``root`` and swept of orphaned
        #: temporary files (shared by one page's sinks), by their text
        #: (``os.path.dirname`` of the path, see _check_directory).
        self.checked: set[str] = checked if checked is not None else set()
        self.path = path
        self.root = root
        self.exists = exists
        self.max_body = max_body
        self.resume = resume
        self.size = 0
        self._fd: int | None = None
        #: The file this sink created (or, resuming, locked): a name in ``_dfd``.
        self._tmp: str | None = None
        self._dfd: int | None = None  # the directory opened at start
        self._dir_id: tuple[int, int] | None = None  # its device and inode
        self._shared_dfd = False  # _dfd is held by ``checked`` (a Directories): not ours to close
        self._dir = ""  # its text, as os.path.dirname gives it
        self._beside = ""  # what a name in it follows, where there are no directory fds
        self._resume_from: Literal["part", "final"] | None = None
        self._validator: dict[str, object] = {}

    def _temporary_name(self, name: str | None = None) -> str:
        """A fresh name for the temporary file of ``name`` (the path's):
        ``.NAME.part-PID-N`` in the same directory."""
        # Unique by process id and a count; O_EXCL refuses a name that exists anyway
        # (then the next number is tried).
        return f".{(self.path.name if name is None else name)[:180]}.part-{os.getpid()}-{next(_TMP_IDS)}"

    def _where(self, name: str) -> str:
        """What to hand os functions (with ``dir_fd=self._dfd``) for ``name`` in the directory."""
        return name if self._dfd is not None else self._beside + name

    def _remove(self, name: str) -> None:
        try:
            os.unlink(self._where(name), dir_fd=self._dfd)
        except FileNotFoundError:
            pass

    # -- resuming ----------------------------------------------------------------------

    def resume_offset(self) -> int:
        """With ``resume``: the bytes already on disk that the transfer may continue from:
        the size of ``NAME.part`` (unless its record names another URL), else of a file
        already under the final name; 0 otherwise."""
        self._resume_from, self._validator = None, {}
        if not self.resume:
            return 0
        _, beside, name = _split(os.fspath(self.path))
        size = _regular_size(f"{beside}{name}.part")
        if size:
            record = self._read_record(f"{beside}{name}.part.json")
            if record.get("url", self.url) != self.url:
                return 0  # another URL's partial body: started over
            self._resume_from, self._validator = "part", record
            return size
        size = _regular_size(beside + name)
        if size:
            self._resume_from = "final"
        return size

    @staticmethod
    def _read_record(path: str) -> dict[str, object]:
        try:
            with open(path, "rb") as f:
                record = json.loads(f.read(65536))
        except (OSError, ValueError):
            return {}
        return record if isinstance(record, dict) else {}

    def resume_headers(self) -> dict[str, str]:
        """The ``If-Range`` header for the request that continues ``NAME.part`` (after
        :meth:`resume_offset`): its strong ETag, else its Last-Modified date, as
        :meth:`remember_response` recorded them; empty when there is none."""
        if self._resume_from != "part":
            return {}
        etag = self._validator.get("etag")
        if isinstance(etag, str) and etag and not etag.startswith("W/"):
            return {"If-Range": etag}  # If-Range needs a strong validator
        modified = self._validator.get("last_modified")
        if isinstance(modified, str) and modified:
            return {"If-Range": modified}
        return {}

    def remember_response(self, headers: Mapping[str, str]) -> None:
        """With ``resume``, after :meth:`start`: record the URL and the response's
        validator (``ETag``, ``Last-Modified``) in ``NAME.part.json`` for the next run's
        ``If-Range``.  Best effort: without the record a resume still works, unchecked."""
        if not self.resume or self._tmp is None:
            return
        fields = {k.lower(): v for k, v in headers.items()}
        record = {"url": self.url, "etag": fields.get("etag"), "last_modified": fields.get("last-modified")}
        try:
            fd = os.open(self._where(self._tmp + ".json"), _SIDECAR_FLAGS, FILE_MODE, dir_fd=self._dfd)
            try:
                _fchmod(fd, FILE_MODE)
                os.write(fd, json.dumps(record).encode("utf-8"))
            finally:
                os.close(fd)
        except OSError:
            pass

    # -- the directory -------------------------------------------------------------------

    def _check_directory(self, *, create: bool, key: str | None = None) -> bool:
        """Raise ``SaveError`` unless the destination's directory lies inside ``root``
        (symlinks resolved); with ``create``, make it (a file below ``root`` in the way
        of a level moves ``path`` to another directory, see the module docstring) and
        check again.  True when ``path`` moved.

        ``checked`` holds the directories' text (``key``, ``os.path.dirname`` of the
        path): the same directory as ``path.parent``, without building and hashing a Path.
        """
        if key is None:
            key = os.path.dirname(os.fspath(self.path))
        if key in self.checked:
            return False
        directory = self.path.parent
        _ensure_inside(self.root, directory, self.url)  # before creating anything
        if not create:
            return False
        made = _make_directories(key, None if self.root is None else os.fspath(self.root))
        if made is not None:
            directory = Path(made)
            self.path = directory / self.path.name
        _ensure_inside(self.root, directory, self.url)  # and after: a symlink may have raced in
        return made is not None

    def _open_directory(self) -> str:
        """Open the destination's directory (made and checked once per directory, then
        swept of orphaned temporary files); returns the file's name in it."""
        directory, beside, name = _split(os.fspath(self.path))
        key = directory
        fresh = key not in self.checked
        moved = fresh and self.root is not None and self._check_directory(create=True, key=key)
        if moved:  # a file was in the way of the directory
            directory, beside, name = _split(os.fspath(self.path))
        self._dir, self._beside = directory, beside
        where = directory or os.curdir
        directories = self.checked if isinstance(self.checked, Directories) else None
        if directories is not None and not fresh and _DIR_FD:
            held = directories.fds.get(key)
            if held is not None:  # opened and checked by an earlier file of this run
                self._dfd, self._dir_id = held
                self._shared_dfd = True
                return name
        if _DIR_FD:
            # Under a root the last level must not be a symlink now (one swapped in
            # after the check would lead elsewhere); one that was there and checked
            # is opened through its target, checked again.
            flags = _DIR_FLAGS | (_NOFOLLOW if self.root is not None else 0)
            try:
                self._dfd = os.open(where, flags)
            except OSError as exc:
                if self.root is None and isinstance(exc, FileNotFoundError | NotADirectoryError):
                    _make_all(where)  # raises as mkdir does when a file is in the way
                    self._dfd = os.open(where, flags)
                elif self.root is not None and exc.errno in (errno.ENOTDIR, errno.ELOOP) and os.path.islink(where):
                    real = os.path.realpath(where)
                    _ensure_inside(self.root, Path(real), self.url)
                    self._dfd = os.open(real, flags)
                else:
                    raise
            st = os.fstat(self._dfd)
            self._dir_id = (st.st_dev, st.st_ino)
            if directories is not None and not moved:
                self._shared_dfd = directories.keep(key, self._dfd, self._dir_id)
        elif not os.path.isdir(where):
            _make_all(where)
        if fresh:
            if key not in _SWEPT:  # once per directory and process: a sweep reads the whole directory
                if len(_SWEPT) > 4096:
                    _SWEPT.clear()
                _SWEPT.add(key)
                self._sweep()
            if not moved:  # a moved directory is looked for again by the next sink
                self.checked.add(key)
        return name

    def _sweep(self) -> None:
        """Remove temporary files that killed processes left here (never a live one's)."""
        try:
            entries = os.scandir(self._dfd if self._dfd is not None else (self._dir or os.curdir))
        except OSError:
            return
        me = os.getpid()
        with entries:
            for entry in entries:
                if entry.name[:1] != ".":
                    continue
                match = _TEMPORARY.fullmatch(entry.name)
                if match is None or int(match[2]) == me or not _process_gone(int(match[2])):
                    continue
                try:
                    if entry.is_file(follow_symlinks=False):
                        self._remove(entry.name)
                except OSError:
                    pass  # another sink removed it first, or it is not ours to remove

    def _same_directory(self) -> None:
        """Raise ``SaveError`` when the directory's path no longer names the one opened."""
        if self._dir_id is None:
            return
        try:
            st = os.stat(self._dir or os.curdir)
            same = (st.st_dev, st.st_ino) == self._dir_id
        except OSError:
            same = False
        if not same:
            if self._shared_dfd and isinstance(self.checked, Directories):
                self.checked.forget(self._dir)  # the next file opens (and checks) it again
                self.checked.discard(self._dir)
            raise SaveError(f"{self._dir or os.curdir} was replaced during the transfer; not saved", url=self.url)

    def _close_directory(self) -> None:
        if self._dfd is not None:
            if not self._shared_dfd:
                os.close(self._dfd)
            self._dfd = None
        self._shared_dfd = False
        self._dir_id = None

    # -- the transfer --------------------------------------------------------------------

    def should_skip(self) -> bool:
        """``exists="skip"`` and a file is there (never a file outside ``root``: start() refuses that)."""
        if self.exists != "skip":
            return False
        try:
            self._check_directory(create=False)
        except SaveError:
            return False
        return _is_regular(os.fspath(self.path))

    def start(self, offset: int) -> None:
        """Open a fresh temporary file (resuming: the partial file); with ``offset`` > 0
        the body continues after that many bytes of the partial (or final) file."""
        if self._fd is not None or self._tmp is not None or self._dfd is not None:
            self.abort()
        try:
            name = self._open_directory()
            if self.resume:
                self._open_partial(name, offset)
            else:
                self._open_temporary(name, offset)
        except OSError as exc:
            self.abort()
            raise SaveError(f"cannot write {self.path}: {exc.strerror or exc}", url=self.url) from exc
        except BaseException:
            self.abort()
            raise

    def _open_temporary(self, name: str, offset: int) -> None:
        for _ in range(100):
            tmp = self._temporary_name(name)
            try:
                fd = os.open(self._where(tmp), _TMP_FLAGS, FILE_MODE, dir_fd=self._dfd)
            except FileExistsError:
                continue  # someone else's: the next number
            self._fd, self._tmp = fd, tmp  # only a name this sink created is ever removed
            break
        else:
            raise FileExistsError(f"no free temporary name beside {self.path}")
        if not getattr(self.checked, "mode_kept", False):
            _fchmod(self._fd, FILE_MODE)
        self.size = 0
        if offset:
            self._copy_final(name, offset)

    def _open_partial(self, name: str, offset: int) -> None:
        part = name + ".part"
        self._fd = fd = os.open(self._where(part), _PART_FLAGS, FILE_MODE, dir_fd=self._dfd)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SaveError(f"cannot resume into {self._beside}{part}: not a regular file", url=self.url)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise SaveError(f"{self._beside}{part} is being written by another transfer", url=self.url) from None
        self._tmp = part  # locked: this sink's to keep or remove now
        _fchmod(fd, FILE_MODE)
        self.size = 0
        if offset and self._resume_from == "part":
            if os.fstat(fd).st_size < offset:
                raise SaveError(f"{self._beside}{part} shrank below {offset} bytes", url=self.url)
            os.ftruncate(fd, offset)
            os.lseek(fd, offset, os.SEEK_SET)
            self.size = offset
        elif offset:
            self._copy_final(name, offset)
        else:
            os.ftruncate(fd, 0)
            self._remove(part + ".json")  # the record of an earlier body

    def _copy_final(self, name: str, offset: int) -> None:
        """Start the temporary file with the first ``offset`` bytes of the final file."""
        fd = self._fd
        assert fd is not None
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        source = os.open(self._where(name), os.O_RDONLY | _NOFOLLOW | _CLOEXEC | _BINARY, dir_fd=self._dfd)
        with open(source, "rb") as partial, os.fdopen(os.dup(fd), "wb") as out:
            shutil.copyfileobj(partial, out, 1 << 20)
        if os.fstat(fd).st_size < offset:
            raise SaveError(f"{self.path} shrank below {offset} bytes", url=self.url)
        os.ftruncate(fd, offset)
        os.lseek(fd, offset, os.SEEK_SET)
        self.size = offset

    async def write(self, chunk: bytes) -> None:
        if len(chunk) < THREAD_WRITE_MIN:
            self.write_now(chunk)
            return
        assert self._fd is not None, "start() first"
        self._count(chunk)
        # Not abandoned on cancellation: abort() closes the file only once the write is over.
        await to_thread.run_sync(self._write_all, chunk)

    def write_now(self, chunk: bytes) -> None:
        """``write`` without the event loop (the bytes go straight to the file)."""
        assert self._fd is not None, "start() first"
        self._count(chunk)
        self._write_all(chunk)

    def _write_all(self, chunk: bytes) -> None:
        fd = self._fd
        assert fd is not None
        size = len(chunk)
        if not size:
            return
        try:
            written = os.write(fd, chunk)  # all of it, nearly always: one call, no view
            if written < size:
                view = memoryview(chunk)[written:]
                while view:
                    view = view[os.write(fd, view):]
        except OSError as exc:
            raise SaveError(f"cannot write {self.path}: {exc.strerror or exc}", url=self.url) from exc

    def commit(self) -> Path:
        """Move the complete body to its final name (following the ``exists`` policy)."""
        assert self._fd is not None and self._tmp is not None, "start() first"
        os.close(self._fd)
        self._fd = None
        tmp, self._tmp = self._tmp, None
        name = self.path.name
        try:
            self._same_directory()
            if self.exists == "unique":
                self.path = self._link_unique(tmp)
                self._remove(tmp)
            else:
                try:
                    os.replace(self._where(tmp), self._where(name), src_dir_fd=self._dfd, dst_dir_fd=self._dfd)
                except IsADirectoryError:
                    if self.root is None:
                        raise
                    self.path = self._link_unique(tmp)  # a directory has the name: the later one moves
                    self._remove(tmp)
            if self.resume:
                self._remove(tmp + ".json")
            elif self.root is None:
                self._drop_old_partial(name)
        except (OSError, SaveError) as exc:
            if not self.resume:
                self._remove(tmp)
            self._close_directory()
            if isinstance(exc, SaveError):
                raise
            raise SaveError(f"cannot move into place {self.path}: {exc.strerror or exc}", url=self.url) from exc
        self._close_directory()
        return self.path

    def _drop_old_partial(self, name: str) -> None:
        """Remove ``NAME.part`` of an earlier interrupted ``--continue`` run of this URL:
        only when its record names this URL (a ``NAME.part`` of the user's own stays)."""
        if not _is_regular(self._beside + name + ".part.json"):
            return  # nearly always: one lstat
        record = self._read_record(self._beside + name + ".part.json")
        if record.get("url") == self.url:
            self._remove(name + ".part")
            self._remove(name + ".part.json")

    def abort(self) -> None:
        """Drop the temporary file (no-op when nothing was started).  Resuming, a
        partial file with bytes in it is kept for the next run."""
        keep = False
        if self._fd is not None:
            if self.resume and self._tmp is not None:
                try:
                    keep = os.fstat(self._fd).st_size > 0
                except OSError:
                    keep = True
            os.close(self._fd)
            self._fd = None
        if self._tmp is not None:
            if not keep:
                self._remove(self._tmp)
                if self.resume:
                    self._remove(self._tmp + ".json")
            self._tmp = None
        self._close_directory()

    def _link_unique(self, tmp: str) -> Path:
        """Give the complete file the first free name of ``NAME``, ``NAME-1`` … (never replacing one)."""
        name = self.path.name
        stem, ext = os.path.splitext(name)
        candidate, n = name, 1
        while True:
            try:
                os.link(self._where(tmp), self._where(candidate), src_dir_fd=self._dfd, dst_dir_fd=self._dfd)
                return self.path.with_name(candidate)
            except FileExistsError:
                candidate = f"{stem}-{n}{ext}"
                n += 1


def write_file(url: str, path: Path, data: bytes, *, root: Path | None = None,
               checked: set[str] | None = None, exists: ExistsPolicy = "overwrite") -> Path:
    """Write ``data`` to ``path`` atomically (temporary file, then rename), following
    the ``exists`` policy; returns the path (with ``"skip"``, the file already there)."""
    sink = FileSink(url, path, root=root, checked=checked, exists=exists)
    if sink.should_skip():
        return sink.path
    sink.start(0)
    try:
        sink.write_now(data)
    except BaseException:
        sink.abort()
        raise
    return sink.commit()
