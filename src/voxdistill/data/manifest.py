"""JSON Lines manifests, one utterance a line, with NeMo's field names so that users' existing
manifests work: ``{"id", "audio_filepath", "duration", "text"?, "domain"?, ...}``.

Relative ``audio_filepath`` values are relative to the manifest's own folder, so a corpus folder can
be moved or copied as a whole. Fields voxdistill does not know are kept and written back.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from voxdistill.errors import VoxdistillError


class ManifestError(VoxdistillError):
    """A manifest line is not valid JSON or lacks a required field."""


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

    def resolved(self, manifest_dir: Path) -> "Utterance":
        """The same utterance with an absolute audio path, for a manifest written elsewhere."""
        return replace(self, audio_filepath=str(self.audio_path(manifest_dir).resolve()))

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


def read_manifest(path: str | Path) -> Iterator[Utterance]:
    """Stream a manifest line by line (memory does not grow with its length). Blank lines are
    skipped; a bad line raises ManifestError naming the file and line number."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                yield parse_line(line, f"{path}:{number}")


def write_manifest(path: str | Path, utterances: Iterable[Utterance]) -> int:
    """Write atomically (temporary file, then rename): a reader never sees half a manifest.
    Returns the number of lines written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    count = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            for utt in utterances:
                out.write(json.dumps(utt.to_json(), ensure_ascii=False) + "\n")
                count += 1
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return count
