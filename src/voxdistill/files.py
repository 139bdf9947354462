"""Writing outputs: atomically (a crash never leaves half of one under its final name), one writer
at a time (a lock per output), with the modes the user's umask gives any new file, and with one
clear error naming the output when it cannot be written. Also hashing files.

Every temporary is named after the output it becomes (``.<name>.<8 hex>.tmp`` beside it) and
created exclusively: never through a link planted at its name, never a file someone else made. It
is created with the modes the umask gives a new file or folder, and what it holds gets the same
modes before it is renamed into place, whatever the library that wrote it chose.
"""

from __future__ import annotations

import errno
import fcntl
import glob
import hashlib
import os
import re
import secrets
import shutil
import stat
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from voxdistill.errors import VoxdistillError

# O_EXCL makes creation fail on any existing name, a symbolic link included (it is not followed).
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # the disk, the quota or the file-size limit is reached
_REFUSED = (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EISDIR, errno.ELOOP, errno.EEXIST)


class OutputError(VoxdistillError):
    """An output cannot be written where it was asked for; the message names the path and why."""


class OutputBusyError(OutputError):
    """Another process is writing the same output."""


def _cannot_write(path: Path, code: int) -> OutputError:
    advice = ("free space there or choose another output" if code in _FULL
              else "choose another output, or make that place writable")
    return OutputError(f"{path}: cannot write: {os.strerror(code)}; {advice}")


def _os_error_code(err: Exception) -> int | None:
    """The errno of an OSError, or of an I/O failure a library written in Rust reports in its own
    exception type (safetensors' ``SafetensorError``: "... I/O error: File too large (os error 27)")."""
    if isinstance(err, OSError):
        return err.errno
    found = re.search(r"\(os error (\d+)\)", str(err))
    return int(found.group(1)) if found else None


@contextmanager
def _writing(path: Path, errnos: tuple[int, ...] = _FULL + _REFUSED) -> Iterator[None]:
    """Turn an OSError with one of ``errnos`` (or a library's I/O error carrying one) into an
    OutputError naming the output ``path``."""
    try:
        yield
    except Exception as err:
        if _os_error_code(err) in errnos:
            raise _cannot_write(path, _os_error_code(err)) from err
        raise


def temporary_pattern(stem: str) -> str:
    """The glob pattern of the temporaries of an output named ``stem``."""
    return f".{glob.escape(stem)}.{'[0-9a-f]' * 8}.tmp"


@contextmanager
def _temporary(path: Path, create: Callable[[Path], None], remove: Callable[[Path], None],
               stem: str | None = None) -> Iterator[tuple[Path, int]]:
    """A new name beside ``path`` (see the module's docstring; ``stem`` in place of its name), made by
    ``create``, which must fail on an existing name, and the modes the kernel gave it (the umask's).
    When the block raises, ``remove`` takes it away. That covers its making too: a signal can land
    after the kernel made the name and before ``create`` returns, and the name is ours then."""
    with _writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = path.with_name(f".{stem or path.name}.{secrets.token_hex(4)}.tmp")
        try:
            with _writing(path, tuple(code for code in _FULL + _REFUSED if code != errno.EEXIST)):
                create(tmp)
                mode = stat.S_IMODE(tmp.stat().st_mode)
        except FileExistsError:
            continue  # someone else's name (or a link planted at it): left alone
        except BaseException:
            remove(tmp)
            raise
        break
    try:
        yield tmp, mode
    except BaseException:
        remove(tmp)
        raise


def _create_file(tmp: Path) -> None:
    os.close(os.open(tmp, _NEW_FILE, 0o666))


def _create_folder(tmp: Path) -> None:
    os.mkdir(tmp, 0o777)  # mkdir never follows a link at the name either


def _remove_file(tmp: Path) -> None:
    tmp.unlink(missing_ok=True)


def _remove_folder(tmp: Path) -> None:
    shutil.rmtree(tmp, ignore_errors=True)


def _give_modes(tmp: Path, mode: int) -> None:
    """Give ``tmp`` (a file or a folder and all in it) the modes the umask gave it when it was made,
    ``mode``: libraries that wrote into it may have made their files private (safetensors writes 0600)."""
    file_mode = mode & 0o666
    for path in [tmp, *(tmp.rglob("*") if tmp.is_dir() else ())]:
        wanted = mode if path.is_dir() else file_mode
        if not path.is_symlink() and stat.S_IMODE(path.stat().st_mode) != wanted:
            path.chmod(wanted)


def remove_leftover_temporaries(path: Path) -> None:
    """Remove the temporaries of ``path`` that a killed writer left beside it. Only safe while
    holding its `output_lock` (every other writer of it then is dead)."""
    for leftover in path.parent.glob(temporary_pattern(path.name)):
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)


@contextmanager
def file_written_atomically(path: str | Path, stem: str | None = None) -> Iterator[Path]:
    """A new empty file beside ``path`` for the block to write (by name, e.g. with a library's
    save function). When the block ends it is renamed to ``path``, so a reader sees the old file or
    the new one, never part of one; when the block raises, it is removed. A full disk or an
    unwritable place becomes an `OutputError` naming ``path``. ``stem``: the temporary's name in
    place of ``path``'s (for folders whose readers pick files by a part of their name)."""
    path = Path(path)
    with _temporary(path, _create_file, _remove_file, stem) as (tmp, mode):
        with _writing(path, _FULL + (errno.EROFS,)):  # other errors of the block are not about writing
            yield tmp
        with _writing(path):
            _give_modes(tmp, mode)
            os.replace(tmp, path)


@contextmanager
def text_written_atomically(path: str | Path) -> Iterator[TextIO]:
    """A UTF-8 text stream for the block to write ``path`` through, as `file_written_atomically`."""
    with file_written_atomically(path) as tmp, tmp.open("w", encoding="utf-8") as out:
        yield out


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` as `file_written_atomically` does; returns ``path``."""
    with text_written_atomically(path) as out:
        out.write(text)
    return Path(path)


@contextmanager
def folder_written_atomically(out: str | Path, existing: str = "refuse") -> Iterator[Path]:
    """A new folder beside ``out`` for the block to write into. When the block ends it is renamed
    to ``out`` (replacing an empty folder there); when the block raises, it is removed. A folder
    with files at ``out`` by then is, as ``existing`` says: "refuse", the rename's OSError;
    "keep" (a concurrent writer of the same result, e.g. a cache entry), kept and this one
    discarded; "replace" (a result made again), removed first."""
    out = Path(out)
    with _temporary(out, _create_folder, _remove_folder) as (tmp, mode):
        with _writing(out, _FULL + (errno.EROFS,)):
            yield tmp
            _give_modes(tmp, mode)
        if existing == "keep" and out.exists():
            shutil.rmtree(tmp)
        else:
            if existing == "replace" and out.exists():
                shutil.rmtree(out)
            with _writing(out, _FULL + (errno.EROFS, errno.EACCES, errno.EPERM)):
                os.rename(tmp, out)  # fails if a non-empty folder appeared meanwhile


@contextmanager
def folders_created_for(folder: str | Path) -> Iterator[None]:
    """For a block that creates ``folder`` (and the folders above it that do not exist yet) and
    fills it: when the block raises, the folders it created go with what it wrote into them, so a
    failed command leaves no empty or half-filled output folder behind. Folders that existed
    before the block are left alone."""
    folder = Path(os.path.abspath(folder))
    missing = [p for p in (folder, *folder.parents) if not (p.exists() or p.is_symlink())]
    try:
        yield
    except BaseException:
        if missing:
            shutil.rmtree(missing[-1], ignore_errors=True)
        raise


def is_first_process() -> bool:
    """Whether this is the first (or only) process of a run: ``torchrun`` and ``accelerate launch``
    number their processes in ``RANK``."""
    return os.environ.get("RANK", "0") == "0"


def _lock_holder(fd: int) -> str:
    return os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"


@contextmanager
def output_lock(path: str | Path, enabled: bool = True) -> Iterator[None]:
    """Hold the lock of the output ``path`` (a file or folder) for the block: another process that
    asks for it meanwhile gets an `OutputBusyError` naming ``path`` and this process's id, instead
    of writing the same output at the same time. Holding it, the temporaries a killed writer of
    ``path`` left beside it are removed.

    The lock is ``flock`` on ``.<name>.lock`` beside ``path``, which holds the holder's process id
    and is removed when the block ends. The kernel releases an flock when its process ends however
    it ends, a ``kill -9`` included, so a lock never outlives its run: a file left by a killed run
    is simply locked again. ``enabled=False`` (the later processes of a multi-process run, which
    write under their first process's lock) takes no lock."""
    if not enabled:
        yield
        return
    path = Path(path)
    where = Path(os.path.abspath(path))  # "." and "run/.." have no name of their own
    lock = where.with_name(f".{where.name}.lock")
    with _writing(path):
        lock.parent.mkdir(parents=True, exist_ok=True)
        fd = _locked(lock, path)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        remove_leftover_temporaries(where)
        yield
    finally:
        lock.unlink(missing_ok=True)  # while still holding it: a waiting opener then sees a removed file
        os.close(fd)


def _locked(lock: Path, path: Path) -> int:
    """An open descriptor of ``lock`` holding its flock. A lock file removed by its previous holder
    between our open and our flock is opened again (its lock guards nothing any more)."""
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _lock_holder(fd)
            os.close(fd)
            raise OutputBusyError(f"{path}: another voxdistill run is writing it (process {holder}); wait for it "
                                  f"to finish or choose another output") from None
        try:
            if os.path.samestat(os.fstat(fd), os.stat(lock, follow_symlinks=False)):
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def check_not_an_input(out: str | Path, inputs: Iterable[str | Path]) -> None:
    """An OutputError when the output ``out`` is the same file as one of the command's ``inputs``:
    writing it would destroy what the command reads."""
    out = Path(out)
    if out.exists() and any(Path(i).exists() and os.path.samefile(out, i) for i in inputs):
        raise OutputError(f"{out}: is also an input of this command, which would be overwritten; choose another output")


def check_writable_output(path: str | Path, kind: str = "file") -> None:
    """Refuse, before any work, an output ``path`` that cannot be written as a ``kind`` ("file" or
    "folder"): a folder where a file is wanted or the reverse, a file where a folder on the way
    should be, or a place this process may not create files in (a read-only folder or disk)."""
    path = Path(path)
    if kind == "file" and path.is_dir():
        raise OutputError(f"{path}: is a folder; give the name of a file to write")
    if kind == "folder" and path.exists() and not path.is_dir():
        raise OutputError(f"{path}: is a file, not a folder; choose another output folder or remove the file")
    places = [path.parent] + ([path] if path.is_dir() else [])  # the lock and temporaries go beside it
    for place in places:
        existing = next(p for p in (place, *place.parents) if p.exists() or p.is_symlink())
        if not existing.is_dir():
            raise OutputError(f"{path}: {existing} is a file, not a folder; choose another output")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise OutputError(f"{path}: cannot write in {existing} (read-only); choose another output, or make "
                              f"that folder writable")


def check_new_folder(out: str | Path, option: str = "--out") -> None:
    """Refuse, before any work, an output folder that holds files (or is a file), or cannot be
    written; the message names ``option``, the flag that gave it."""
    out = Path(out)
    if out.exists() and not (out.is_dir() and not any(out.iterdir())):
        raise OutputError(f"{option} {out}: already exists and is not an empty folder; choose another output "
                          f"folder or remove it")
    check_writable_output(out, "folder")


def sha256_of_files(paths: Iterable[str | Path]) -> str:
    """The sha256 of the files' bytes, read in order one after another (in blocks: any size)."""
    h = hashlib.sha256()
    for path in paths:
        with Path(path).open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()
