"""What the benchmarks share: their printed tables, their stopwatch, the clips and demo-corpus subsets
they measure on, and how a script reports a voxdistill error. Each benchmark runs as a script
(`.venv/bin/python benchmarks/NAME.py`), whose folder Python puts first on the path, so this module is
imported by name: `from _common import Column, Table, ...`.

Fair timing of several models against each other (warm-up, fixed threads, interleaved turns) is the
package's own, in `voxdistill.evaluation.speed`; this module only adds the plain wall clock the
benchmarks time whole stages with.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from voxdistill.data.manifest import Utterance, read_manifest, write_manifest
from voxdistill.errors import VoxdistillError
from voxdistill.paths import cache_dir

MISSING = "-"  # a cell without a value


@dataclass(frozen=True)
class Column:
    """One column of a printed table: its heading, how a value is written (a format spec such as
    ".1%" or "8.2f", or a function of the value), and its least width. Text aligns left if ``left``,
    figures right; None prints as MISSING and a string as it is."""

    heading: str
    format: str | Callable[[Any], str] = ""
    width: int = 0
    left: bool = False

    def cell(self, value: Any) -> str:
        if value is None:
            return MISSING
        if isinstance(value, str):
            return value
        return self.format(value) if callable(self.format) else format(value, self.format)


class Table:
    """A plain-text table. Print ``header()`` and then ``row(...)`` as results come in (each column
    as wide as its heading or least width), or ``format(rows)`` for a finished table (each column as
    wide as its widest cell)."""

    def __init__(self, *columns: Column):
        self.columns = columns

    def header(self) -> str:
        return self._line([c.heading for c in self.columns], self._least_widths())

    def row(self, *values: Any) -> str:
        return self._line(self._cells(values), self._least_widths())

    def format(self, rows: Iterable[Sequence[Any]]) -> str:
        cells = [self._cells(values) for values in rows]
        widths = [max([least, *(len(row[i]) for row in cells)]) for i, least in enumerate(self._least_widths())]
        return "\n".join([self._line([c.heading for c in self.columns], widths),
                          *(self._line(row, widths) for row in cells)])

    def _cells(self, values: Sequence[Any]) -> list[str]:
        if len(values) != len(self.columns):
            raise ValueError(f"a row of {len(values)} values for {len(self.columns)} columns")
        return [column.cell(value) for column, value in zip(self.columns, values)]

    def _least_widths(self) -> list[int]:
        return [max(len(c.heading), c.width) for c in self.columns]

    def _line(self, texts: Sequence[str], widths: Sequence[int]) -> str:
        return " ".join(text.ljust(width) if column.left else text.rjust(width)
                        for column, text, width in zip(self.columns, texts, widths)).rstrip()


def times(value: float) -> str:
    """A speed ratio: 2.15x."""
    return f"{value:.2f}x"


def millions(value: float) -> str:
    """A parameter count: 37.8M."""
    return f"{value / 1e6:.1f}M"


def wer_columns(sets: Sequence[str]) -> list[Column]:
    """A WER column per evaluation set, named after it."""
    return [Column(name, ".1%", width=6) for name in sets]


class Stopwatch:
    """Wall-clock seconds of a stretch of work: ``with Stopwatch() as watch: ...`` leaves the total
    in ``watch.seconds``; ``elapsed()`` is the time since the start so far, and ``lap()`` the time
    since the previous lap (or the start), for work timed in parts."""

    def __init__(self) -> None:
        self.started = self._lapped = time.perf_counter()
        self.seconds = 0.0

    def __enter__(self) -> "Stopwatch":
        self.started = self._lapped = time.perf_counter()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.seconds = time.perf_counter() - self.started

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def lap(self) -> float:
        now = time.perf_counter()
        seconds, self._lapped = now - self._lapped, now
        return seconds


def first_clips(manifest: Path, count: int) -> list:
    """The audio of the first ``count`` utterances of ``manifest``, loaded and validated."""
    from voxdistill.audio import load_audio  # imports torch: not for a benchmark's --help

    return [load_audio(u.audio_path(manifest.parent)) for u in islice(read_manifest(manifest), count)]


def add_demo_corpus_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--corpus", type=Path, default=cache_dir() / "corpus" / "demo",
                        help="the demo corpus folder, built there if missing (default: in the cache)")


def demo_training_subset(corpus: Path, count: int, work: Path) -> tuple[list[Utterance], Path]:
    """The first ``count`` utterances of the demo corpus's train split (building the corpus into
    ``corpus`` first if it is not complete), and ``work/subset.jsonl``, a manifest of them with
    absolute audio paths."""
    from voxdistill.data.corpus import PRESETS, build_corpus  # imports torch: not for --help

    build_corpus(PRESETS["demo"], corpus, seed=0, progress=False)
    utterances = list(islice(read_manifest(corpus / "train.jsonl"), count))
    manifest = work / "subset.jsonl"
    write_manifest(manifest, [u.resolved(corpus) for u in utterances])
    return utterances, manifest


def run(main: Callable[[], int | None]) -> None:
    """Run a benchmark's ``main`` and exit with its status; a voxdistill error (a bad option, a
    folder of other settings) is printed as one line and exits 2, like the command line's."""
    try:
        status = main()
    except VoxdistillError as err:
        print(f"error: {err}", file=sys.stderr)
        status = 2
    sys.exit(status or 0)
