"""JSON Lines manifests, one utterance a line, with NeMo's field names so that users' existing
manifests work: ``{"id", "audio_filepath", "duration", "text"?, "domain"?, ...}``.

Relative ``audio_filepath`` values are relative to the manifest's own folder, so a corpus folder can
be moved or copied as a whole. Fields voxdistill does not know are kept and written back.

Ids are unique within a manifest: every output is keyed by id, so two lines with one id would leave
one utterance labelled twice and the other lost. A manifest without any utterance is an error too.
Commands call ``scan_manifest`` before loading a model, so these fail in seconds; ``read_manifest``
refuses them as well, for every other reader.

Numbers are checked where a line is parsed (`parse_line`), the one place every reader goes through:
NaN and Infinity (which Python's json accepts though JSON has no such values) and numbers too large
for a float are refused in any field, and a duration must be positive. Whether a duration is the
audio's own is known only once the audio is read: readers of audio call `check_duration`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from voxdistill.errors import VoxdistillError
from voxdistill.files import text_written_atomically


class ManifestError(VoxdistillError):
    """A manifest is missing or empty, a line is not UTF-8 or not valid JSON, lacks a required field
    or holds an impossible value, two lines share an id, or a line names audio that is not there."""


class DurationMismatchError(ManifestError):
    """A line's ``duration`` is not the length of its audio."""


# A manifest's duration may be rounded (to 10 ms, say), and decoding may add or drop a few ms (a
# codec's priming samples, a resampler's last partial sample); beyond this it describes another
# file, or a cut one. 0.1 s is five encoder positions of a CTC student, which reads its lengths here.
DURATION_TOLERANCE_S = 0.1


@dataclass(frozen=True)
class Utterance:
    id: str
    audio_filepath: str  # as written in the manifest; see ``audio_path``
    duration: float  # seconds
    text: str | None = None
    domain: str | None = None
    voice: str | None = None
    extra: dict = field(default_factory=dict)  # any other fields, kept as they were

    def audio_path(self, manifest_dir: Path) -> Path:
        path = Path(self.audio_filepath)
        return path if path.is_absolute() else manifest_dir / path

    def resolved(self, manifest_dir: Path, written_to: Path | None = None) -> "Utterance":
        """The same utterance for a manifest written elsewhere: its audio path absolute, or relative
        to ``written_to`` (the new manifest's folder) when the audio lies inside that folder, so a
        folder moved with its audio and manifests still names the same files in the same bytes."""
        audio = self.audio_path(manifest_dir).resolve()
        if written_to is not None and audio.is_relative_to(written_to.resolve()):
            return replace(self, audio_filepath=audio.relative_to(written_to.resolve()).as_posix())
        return replace(self, audio_filepath=str(audio))

    def to_json(self) -> dict:
        record = {k: v for k, v in asdict(self).items() if k != "extra" and v is not None}
        return {**record, **self.extra}


_KNOWN = {"id", "audio_filepath", "duration", "text", "domain", "voice"}


class _NotFinite(str):
    """A number JSON cannot hold (NaN, Infinity, or one past a float's range), as written."""


def _finite_float(text: str) -> float | _NotFinite:
    value = float(text)
    return value if math.isfinite(value) else _NotFinite(text)


def _not_finite(value, key: str = "") -> tuple[str, str] | None:
    """(dotted key, number as written) of the first `_NotFinite` inside ``value``; None if none."""
    if isinstance(value, _NotFinite):
        return key, value
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for name, child in children:
        if (found := _not_finite(child, f"{key}.{name}" if key else str(name))) is not None:
            return found
    return None


def parse_line(line: str, where: str) -> Utterance:
    """One manifest line -> Utterance; ``where`` ("file.jsonl:12") names the line in errors."""
    try:
        record = json.loads(line, parse_constant=_NotFinite, parse_float=_finite_float)
    except json.JSONDecodeError as err:
        raise ManifestError(f"{where}: not valid JSON ({err.msg})") from None
    if not isinstance(record, dict):
        raise ManifestError(f"{where}: a manifest line must be a JSON object")
    if (found := _not_finite(record)) is not None:
        raise ManifestError(f"{where}: field {found[0]} is {found[1]}, not a finite number (JSON has no NaN "
                            f"or Infinity); write the number it should be")
    missing = [k for k in ("audio_filepath", "duration") if k not in record]
    if missing:
        raise ManifestError(f"{where}: missing field(s) {', '.join(missing)}")
    duration = record["duration"]
    if isinstance(duration, bool) or not isinstance(duration, (int, float)) or duration <= 0:
        raise ManifestError(f"{where}: duration must be a positive number of seconds, got {duration!r}")
    for key in ("id", "audio_filepath", "text", "domain", "voice"):
        if key in record and record[key] is not None and not isinstance(record[key], str):
            raise ManifestError(f"{where}: field {key} must be a string, got {record[key]!r}")
    # NeMo manifests often have no id; the audio file's stem is the natural one.
    utt_id = record.get("id") or Path(record["audio_filepath"]).stem
    return Utterance(
        id=utt_id, audio_filepath=record["audio_filepath"], duration=float(duration),
        text=record.get("text"), domain=record.get("domain"), voice=record.get("voice"),
        extra={k: v for k, v in record.items() if k not in _KNOWN},
    )


def manifest_lines(path: Path) -> Iterator[tuple[int, str | ManifestError]]:
    """(line number, text) of every line of ``path`` that is not blank; in place of the text, a
    ManifestError for a line that is not UTF-8, so that a reader may report it and read on."""
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                yield number, ManifestError(
                    f"{path}:{number}: not UTF-8 text (byte 0x{raw[err.start]:02x} at column {err.start + 1}); "
                    f"save the manifest as UTF-8")
                continue
            if line.strip():
                yield number, line


def _numbered_utterances(path: Path) -> Iterator[tuple[int, Utterance]]:
    for number, line in manifest_lines(path):
        if isinstance(line, ManifestError):
            raise line
        yield number, parse_line(line, f"{path}:{number}")


def _duplicate_error(path: Path, duplicates: list[tuple[str, int, int]]) -> ManifestError:
    """``duplicates``: (id, first line, repeated line) of every id found twice."""
    utt_id, first, again = duplicates[0]
    more = f" (and {len(duplicates) - 1} more repeated id(s))" if len(duplicates) > 1 else ""
    return ManifestError(
        f"{path}:{again}: duplicate id {utt_id!r}, first used at {path}:{first}{more}; every line "
        f"needs its own id (a line without one takes its audio file's name), or one utterance would "
        f"be labelled twice and another lost. `voxdistill corpus check {path}` lists every problem")


def _empty_error(path: Path) -> ManifestError:
    return ManifestError(f"{path}: the manifest holds no utterances; check that this is the file you "
                         f"meant, or build it again (one JSON object per line)")


@dataclass(frozen=True)
class LineProblem:
    """The lines of a manifest that share one problem: the first of them, and how many there are."""

    line: int  # the first such line's number
    utt_id: str
    detail: str  # about that line, e.g. the missing audio file's path
    count: int = 1


@dataclass(frozen=True)
class ManifestScan:
    path: Path
    utterances: int
    seconds: float  # sum of the durations the lines give
    missing_audio: LineProblem | None = None  # lines whose audio file does not exist
    without_text: LineProblem | None = None  # lines without a reference text, or with a blank one

    def refuse_missing_audio(self, allowed: int = 0) -> None:
        """A ManifestError naming the first line whose audio is not there, when more than ``allowed``
        are missing: a command fails before its long work, not after it, at a file far down."""
        missing = self.missing_audio
        if missing is not None and missing.count > allowed:
            more = f" (and {missing.count - 1} more line(s) whose audio is missing)" if missing.count > 1 else ""
            raise ManifestError(
                f"{self.path}:{missing.line} [{missing.utt_id}]: audio file {missing.detail} not found{more}; fix "
                f"the paths (a relative one is relative to the manifest's folder) or leave those lines out. "
                f"`voxdistill corpus check {self.path}` lists every problem")

    def refuse_without_text(self) -> None:
        """A ManifestError naming the first line without a reference text, for a command that scores
        every utterance against its reference."""
        lacking = self.without_text
        if lacking is not None:
            more = f" (and {lacking.count - 1} more such line(s))" if lacking.count > 1 else ""
            raise ManifestError(
                f"{self.path}:{lacking.line} [{lacking.utt_id}]: {lacking.detail}{more}; every utterance is "
                f"scored against its reference: give it one, or leave the line out")


def _note(problem: LineProblem | None, line: int, utt_id: str, detail: str) -> LineProblem:
    """``problem`` counted once more, or the first of its kind at ``line``."""
    return LineProblem(line, utt_id, detail) if problem is None else replace(problem, count=problem.count + 1)


def scan_manifest(path: str | Path) -> ManifestScan:
    """Check a whole manifest before any work: every line parses, no id repeats, at least one
    utterance. Raises ManifestError naming the file and lines. Also notes (without raising) lines
    whose audio file does not exist and lines without reference text, for a command to refuse
    (`ManifestScan.refuse_missing_audio`, `ManifestScan.refuse_without_text`). Streams the file;
    memory holds only the ids."""
    path = Path(path)
    first_line: dict[str, int] = {}
    duplicates: list[tuple[str, int, int]] = []
    seconds = 0.0
    missing_audio = without_text = None
    for number, utt in _numbered_utterances(path):
        if utt.id in first_line:
            duplicates.append((utt.id, first_line[utt.id], number))
        else:
            first_line[utt.id] = number
        seconds += utt.duration
        audio = utt.audio_path(path.parent)
        if not os.path.exists(audio):
            missing_audio = _note(missing_audio, number, utt.id, str(audio))
        if utt.text is None or not utt.text.strip():
            without_text = _note(without_text, number, utt.id,
                                 "no reference text" if utt.text is None else "empty reference text")
    if duplicates:
        raise _duplicate_error(path, duplicates)
    if not first_line:
        raise _empty_error(path)
    return ManifestScan(path, len(first_line), seconds, missing_audio, without_text)


def duration_disagreement(utt: Utterance, audio_path: Path, audio_seconds: float) -> str | None:
    """What is wrong with ``utt``'s duration given that its audio lasts ``audio_seconds``; None when
    the two agree within DURATION_TOLERANCE_S."""
    if abs(audio_seconds - utt.duration) <= DURATION_TOLERANCE_S:
        return None
    return f"duration says {utt.duration:.2f} s but {audio_path} lasts {audio_seconds:.2f} s"


def check_duration(manifest: Path, utt: Utterance, audio_seconds: float) -> None:
    """A DurationMismatchError naming ``manifest``, the utterance and both lengths when ``utt``'s
    duration is not the length of its audio (lasting ``audio_seconds``): a reader that trusts the
    duration (a CTC student's frame counts, hours of audio) would learn or report the wrong thing."""
    problem = duration_disagreement(utt, utt.audio_path(manifest.parent), audio_seconds)
    if problem is not None:
        raise DurationMismatchError(
            f"{manifest} [{utt.id}]: {problem}; correct the line's duration (or its audio_filepath). "
            f"`voxdistill corpus check {manifest}` lists every such line")


def read_manifest(path: str | Path) -> Iterator[Utterance]:
    """Stream a manifest line by line (memory holds the ids seen, not the records). Blank lines
    are skipped; a bad line, a repeated id or a manifest without utterances raises ManifestError
    naming the file (and line). Call ``scan_manifest`` first to fail before any work is done."""
    path = Path(path)
    first_line: dict[str, int] = {}
    for number, utt in _numbered_utterances(path):
        if utt.id in first_line:
            raise _duplicate_error(path, [(utt.id, first_line[utt.id], number)])
        first_line[utt.id] = number
        yield utt
    if not first_line:
        raise _empty_error(path)


def write_manifest(path: str | Path, utterances: Iterable[Utterance]) -> int:
    """Write atomically (temporary file, then rename): a reader never sees half a manifest.
    Returns the number of lines written."""
    count = 0
    with text_written_atomically(path) as out:
        for utt in utterances:
            out.write(json.dumps(utt.to_json(), ensure_ascii=False) + "\n")
            count += 1
    return count


def concatenate_manifests(path: str | Path, manifests: Iterable[str | Path]) -> int:
    """One manifest holding every utterance of ``manifests`` in order, audio paths made absolute (the
    inputs may live in other folders), or relative where the audio lies in the new manifest's own
    folder; a repeated id across them is refused like one within a file."""
    path = Path(path)
    seen: dict[str, Path] = {}

    def utterances() -> Iterator[Utterance]:
        for manifest in map(Path, manifests):
            for utt in read_manifest(manifest):
                if utt.id in seen:
                    raise ManifestError(f"{manifest}: id {utt.id!r} is also in {seen[utt.id]}; the manifests "
                                        f"joined into {path} must not share ids")
                seen[utt.id] = manifest
                yield utt.resolved(manifest.parent, written_to=path.parent)

    return write_manifest(path, utterances())
