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

Atomic files
    :class:`FileSink` writes to a hidden temporary file in the destination
    directory (``.NAME.part-PID-N``), opened with ``O_EXCL|O_NOFOLLOW``, and
    renames it to the final name only when the body is complete.  A failed or
    cancelled transfer removes the temporary file; nothing ever sits under the
    final name half-written.  Existing files follow the ``exists`` policy:
    ``"overwrite"`` (default, replaced atomically), ``"skip"`` (not fetched
    again) or ``"unique"`` (``name-1.ext``, ``name-2.ext`` …).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import os
import re
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Literal
from urllib.parse import SplitResult, unquote, urlsplit

from anyio import to_thread

from ._errors import SaveError, SizeLimitExceeded

__all__ = ["ExistsPolicy", "FileSink", "MemorySink", "PathAllocator", "local_path", "write_file"]

ExistsPolicy = Literal["overwrite", "skip", "unique"]

_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"|?*\\/]')
_RESERVED = {"con", "prn", "aux", "nul"} | {f"{p}{i}" for p in ("com", "lpt") for i in range(1, 10)}
_MAX_NAME = 150  # bytes; leaves room for the temporary-file prefix and suffix under 255


def _short_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def safe_segment(segment: str) -> str:
    """One path segment made safe to use as a file or directory name ('' if nothing is left)."""
    name = _UNSAFE.sub("_", unquote(segment, errors="replace")).strip()
    if name in ("", ".", ".."):
        return ""
    name = name.rstrip(". ") or "_"  # Windows drops trailing dots and spaces
    if name.split(".", 1)[0].lower() in _RESERVED:
        name = "_" + name
    if len(name.encode("utf-8", "surrogatepass")) > _MAX_NAME:
        stem, ext = os.path.splitext(name)
        ext = ext if len(ext) <= 16 else ""
        keep = stem.encode("utf-8", "surrogatepass")[: _MAX_NAME - 10 - len(ext)]
        name = keep.decode("utf-8", "ignore") + "-" + _short_hash(name) + ext
    return name


# Every URL of a page repeats its host and, mostly, a few directories: making those
# safe once (not once per file) keeps relative_path to one urlsplit and one
# safe_segment per URL.  Both are pure functions of their arguments; the caches are
# bounded so a long-running loader does not grow without limit.


@functools.lru_cache(maxsize=256)
def _host_directory(scheme: str, netloc: str) -> str:
    """The first segment of a saved path: the host, its port, and the scheme unless HTTP(S)."""
    parts = SplitResult(scheme, netloc, "", "", "")  # hostname and port depend on the netloc only
    try:
        port = parts.port
    except ValueError:
        port = None
    host = safe_segment((parts.hostname or "local") + (f"_{port}" if port else "")) or "_"
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
    """Gives each URL of one page its own path, even when two URLs map to the same name."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._taken: set[str] = set()  # lower-cased: case-insensitive disks merge Foo and foo
        self._by_url: dict[str, Path] = {}
        #: ``(root / "host/dir", its text as a prefix)`` by ``"host/dir"``: pathlib then
        #: parses only the file name of each path, not the whole of
        #: ``root / "host/dir/name"`` again, and the text of ``directory / name`` (the
        #: key of ``_taken``) is ``prefix + name`` without pathlib formatting it.
        self._directories: dict[str, tuple[Path, str]] = {}

    def _directory(self, relative: str) -> tuple[Path, str]:
        entry = self._directories.get(relative)
        if entry is None:
            directory = self.root / relative
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
            path = _child(directory, name)  # the same Path as root / "directory/name"
            key = (prefix + name).lower()  # str(path).lower(), without formatting it
        else:  # a suffix, or an odd name (".", a separator in index=): pathlib decides
            path = directory / name
            if suffix and not path.name.lower().endswith(suffix):
                path = path.with_name(path.name + suffix)
            key = os.fspath(path).lower()
        candidate, n = path, 1
        while key in self._taken:
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


def _join_child(directory: Path, name: str) -> Path:
    return directory / name


#: ``directory / name`` for a plain name, without parsing the name: pathlib's own
#: helper for children (what iterdir uses) where this Python has it.
_child: Callable[[Path, str], Path] = getattr(Path, "_make_child_relpath", _join_child)


class _Counted:
    """Counts the bytes a sink takes and enforces ``max_body``."""

    url: str
    max_body: int | None
    size: int

    def _count(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.max_body is not None and self.size > self.max_body:
            raise SizeLimitExceeded(f"body larger than {self.max_body} bytes", url=self.url)


class MemorySink(_Counted):
    """Keeps the body in memory, up to ``max_body`` bytes."""

    def __init__(self, url: str, max_body: int | None = None) -> None:
        self.url = url
        self.max_body = max_body
        self._chunks: list[bytes] = []
        self.size = 0

    def start(self, offset: int) -> None:
        self._chunks.clear()
        self.size = 0

    async def write(self, chunk: bytes) -> None:
        self._count(chunk)
        self._chunks.append(chunk)

    def commit(self) -> bytes:
        return b"".join(self._chunks)

    def abort(self) -> None:
        self._chunks.clear()


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
_TMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)


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


class FileSink(_Counted):
    """Streams the body into a temporary file and renames it into place when complete."""

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
        #: Directories already created and verified inside ``root`` (shared by one page's
        #: sinks), by their text (``os.path.dirname`` of the path, see _check_directory).
        self.checked: set[str] = checked if checked is not None else set()
        self.path = path
        self.root = root
        self.exists = exists
        self.max_body = max_body
        self.resume = resume
        self.size = 0
        self._fd: int | None = None
        self._tmp: str | None = None

    def _temporary_name(self, prefix: str | None = None) -> str:
        # Unique by process id and a count; O_EXCL refuses a name that exists anyway
        # (then the next number is tried).  A plain string: the name is only handed to
        # os.open/os.replace/os.unlink, so building a Path for it would be wasted work.
        if prefix is None:
            prefix = self._temporary_prefix(os.fspath(self.path))[1]
        return prefix + str(next(_TMP_IDS))

    @staticmethod
    def _temporary_prefix(text: str) -> tuple[str, str]:
        """The directory of the path ``text`` (``os.path.dirname``) and the temporary
        names beside it but for their count (``os.path.join(directory, ".NAME.part-PID-")``)."""
        directory, beside, name = _split(text)
        return directory, f"{beside}.{name[:180]}.part-{os.getpid()}-"

    def resume_offset(self) -> int:
        """Bytes already on disk under the final name that a resume may keep."""
        if self.resume and self.path.is_file() and not self.path.is_symlink():
            return self.path.stat().st_size
        return 0

    def _check_directory(self, *, create: bool, key: str | None = None) -> None:
        """Raise ``SaveError`` unless the destination's directory lies inside ``root``
        (symlinks resolved); with ``create``, make it and check again.  Once per directory.

        ``checked`` holds the directories' text (``key``, ``os.path.dirname`` of the
        path): the same directory as ``path.parent``, without building and hashing a Path.
        """
        if key is None:
            key = os.path.dirname(os.fspath(self.path))
        if key in self.checked:
            return
        directory = self.path.parent
        _ensure_inside(self.root, directory, self.url)  # before creating anything
        if create:
            directory.mkdir(parents=True, exist_ok=True)
            _ensure_inside(self.root, directory, self.url)  # and after: a symlink may have raced in
            self.checked.add(key)

    def should_skip(self) -> bool:
        """``exists="skip"`` and the file is there (never a file outside ``root``: start() refuses that)."""
        if self.exists != "skip":
            return False
        try:
            self._check_directory(create=False)
        except SaveError:
            return False
        return self.path.exists()

    def start(self, offset: int) -> None:
        """Open a fresh temporary file; with ``offset`` > 0 it starts as a copy of the partial file."""
        if self._fd is not None or self._tmp is not None:
            self.abort()
        try:
            directory, prefix = self._temporary_prefix(os.fspath(self.path))
            # Inside root: checked (and made) before anything is created in it.  Without
            # a root there is nothing to check, and the directory is made only when the
            # open says it is missing: most files go to a directory that exists.
            unmade = self.root is None and directory not in self.checked
            if not unmade:
                self._check_directory(create=True, key=directory)
            for _ in range(100):
                tmp = self._temporary_name(prefix)
                try:
                    self._fd = os.open(tmp, _TMP_FLAGS, 0o644)
                except FileExistsError:
                    continue  # someone else's: the next number
                except (FileNotFoundError, NotADirectoryError):
                    if not unmade:
                        raise
                    unmade = False
                    self._check_directory(create=True, key=directory)  # or raise as mkdir did
                    continue
                self._tmp = tmp  # only a name this sink created is ever removed
                break
            else:
                raise FileExistsError(f"no free temporary name beside {self.path}")
            self.size = 0
            if offset:
                with open(self.path, "rb") as partial, os.fdopen(os.dup(self._fd), "wb") as out:
                    shutil.copyfileobj(partial, out, 1 << 20)
                os.ftruncate(self._fd, offset)
                os.lseek(self._fd, offset, os.SEEK_SET)
                self.size = offset
        except OSError as exc:
            self.abort()
            raise SaveError(f"cannot write {self.path}: {exc.strerror or exc}", url=self.url) from exc

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
        try:
            if self.exists == "unique":
                self.path = _link_unique(tmp, self.path)
                os.unlink(tmp)
            else:
                os.replace(tmp, self.path)
        except OSError as exc:
            _unlink(tmp)
            raise SaveError(f"cannot move into place {self.path}: {exc.strerror or exc}", url=self.url) from exc
        return self.path

    def abort(self) -> None:
        """Drop the temporary file (no-op when nothing was started)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._tmp is not None:
            _unlink(self._tmp)
            self._tmp = None


def write_file(url: str, path: Path, data: bytes, *, root: Path | None = None,
               checked: set[str] | None = None) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file, then rename); returns the path."""
    sink = FileSink(url, path, root=root, checked=checked)
    sink.start(0)
    try:
        sink.write_now(data)
    except BaseException:
        sink.abort()
        raise
    return sink.commit()


def _link_unique(tmp: str, path: Path) -> Path:
    stem, ext = os.path.splitext(path.name)
    candidate, n = path, 1
    while True:
        try:
            os.link(tmp, candidate)  # atomic, never replaces an existing name
            return candidate
        except FileExistsError:
            candidate = path.with_name(f"{stem}-{n}{ext}")
            n += 1


def _unlink(path: str | Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
