"""Writing files so that a crash never leaves half of one under its final name; hashing them."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``path`` through a temporary file in the same folder and a rename: a reader sees the
    old file or the new one, never part of it, and a crash leaves the previous file in place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def sha256_of_files(paths: Iterable[str | Path]) -> str:
    """The sha256 of the files' bytes, read in order one after another (in blocks: any size)."""
    h = hashlib.sha256()
    for path in paths:
        with Path(path).open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


@contextmanager
def folder_written_atomically(out: Path, keep_existing: bool = False) -> Iterator[Path]:
    """A temporary folder beside ``out`` to write into. When the block ends it is renamed to ``out``
    (replacing an empty folder there); when the block raises, it is removed. ``keep_existing``: a
    folder that appeared at ``out`` meanwhile (a concurrent writer of the same result) is kept and
    this one discarded."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield tmp
        if keep_existing and out.exists():
            shutil.rmtree(tmp)
        else:
            os.rename(tmp, out)  # replaces an empty folder; fails if a non-empty one appeared meanwhile
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
