"""JSON Lines manifests, one utterance a line, with NeMo's field names so that users' existing
manifests work: ``{"id", "audio_filepath", "duration", "text"?, "domain"?, ...}``.

Relative ``audio_filepath`` values are relative to the manifest's own folder, so a corpus folder can
be moved or copied as a whole. Fields voxdistill does not know are kept and written back.

Ids are unique within a manifest: every output is keyed by id, so two lines with one id would leave
one utterance labelled twice and the other lost. A manifest without any utterance is an error too.
Commands call ``scan_manifest`` before loading a model, so these fail in seconds; ``read_manifest``
refuses them as well, for every other reader.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from voxdistill.errors import VoxdistillError
from voxdistill.files import text_written_atomically


class ManifestError(VoxdistillError):
    """A manifest is missing or empty, a line is not valid JSON or lacks a required field, or two
    lines share an id."""


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


def parse_line(line: str, where: str) -> Utterance:
    """One manifest line -> Utterance; ``where`` ("file.jsonl:12") names the line in errors."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise ManifestError(f"{where}: not valid JSON ({err.msg})") from None
    if not isinstance(record, dict):
        raise ManifestError(f"{where}: a manifest line must be a JSON object")
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


def _numbered_utterances(path: Path) -> Iterator[tuple[int, Utterance]]:
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
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
class ManifestScan:
    utterances: int
    seconds: float  # sum of the durations the lines give


def scan_manifest(path: str | Path) -> ManifestScan:
    """Check a whole manifest before any work: every line parses, no id repeats, at least one
    utterance. Raises ManifestError naming the file and lines. Streams the file; memory holds only
    the ids."""
    path = Path(path)
    first_line: dict[str, int] = {}
    duplicates: list[tuple[str, int, int]] = []
    seconds = 0.0
    for number, utt in _numbered_utterances(path):
        if utt.id in first_line:
            duplicates.append((utt.id, first_line[utt.id], number))
        else:
            first_line[utt.id] = number
        seconds += utt.duration
    if duplicates:
        raise _duplicate_error(path, duplicates)
    if not first_line:
        raise _empty_error(path)
    return ManifestScan(len(first_line), seconds)


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
