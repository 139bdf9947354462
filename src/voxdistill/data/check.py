"""``voxdistill corpus check``: every line and every audio file of a manifest, all problems at once.

A problem makes the manifest unusable as it stands (no utterances at all, bad line, duplicate id,
missing, truncated, too short or otherwise unusable audio, a duration that disagrees with the
file). A *note* is a conversion voxdistill will make on load (downmix, resample), worth knowing but
not wrong.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from voxdistill.audio import SAMPLE_RATE, AudioConversionWarning, load_audio
from voxdistill.data.manifest import ManifestError, Utterance, duration_disagreement, manifest_lines, parse_line
from voxdistill.errors import AudioError


@dataclass(frozen=True)
class Finding:
    where: str  # "manifest.jsonl:12"
    utt_id: str | None
    message: str
    is_problem: bool  # False for a note

    def __str__(self) -> str:
        kind = "problem" if self.is_problem else "note"
        return f"{kind}: {self.where}" + (f" [{self.utt_id}]" if self.utt_id else "") + f": {self.message}"


def check_manifest(path: str | Path, max_seconds: float | None = 30.0) -> Iterator[Finding]:
    """Yield every finding, line by line; memory holds only the set of ids seen."""
    path = Path(path)
    if not path.is_file():
        yield Finding(str(path), None, "manifest not found", True)
        return
    seen: dict[str, str] = {}
    for number, line in manifest_lines(path):
        where = f"{path}:{number}"
        try:
            if isinstance(line, ManifestError):
                raise line
            utt = parse_line(line, where)
        except ManifestError as err:
            yield Finding(where, None, str(err).removeprefix(f"{where}: "), True)
            continue
        if utt.id in seen:
            yield Finding(where, utt.id, f"duplicate id (first at {seen[utt.id]})", True)
        seen.setdefault(utt.id, where)
        if utt.text is not None and not utt.text.strip():
            yield Finding(where, utt.id, "empty text; omit the field for unlabelled audio", True)
        yield from _check_audio(utt, utt.audio_path(path.parent), where, max_seconds)
    if not seen:
        yield Finding(str(path), None, "no utterances: every command would refuse this manifest", True)


def undecodable_audio(path: str | Path) -> Iterator[Finding]:
    """The lines of a well-formed manifest whose audio does not decode (a corrupt body behind a valid
    header, no samples, non-finite samples, ...), found by decoding every clip with no length limit:
    a long run refuses them before its work, not at that line after it. Conversions are not reported."""
    path = Path(path)
    for number, line in manifest_lines(path):
        where = f"{path}:{number}"
        if isinstance(line, ManifestError):
            raise line
        utt = parse_line(line, where)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AudioConversionWarning)
            try:
                load_audio(utt.audio_path(path.parent), max_seconds=None)
            except AudioError as err:
                yield Finding(where, utt.id, str(err), True)


def _check_audio(utt: Utterance, audio_path: Path, where: str, max_seconds: float | None) -> Iterator[Finding]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", AudioConversionWarning)
        try:
            audio = load_audio(audio_path, max_seconds=max_seconds)
        except AudioError as err:
            yield Finding(where, utt.id, str(err), True)
            return
    for w in caught:
        if issubclass(w.category, AudioConversionWarning):
            yield Finding(where, utt.id, str(w.message), False)
    if (problem := duration_disagreement(utt, audio_path, len(audio) / SAMPLE_RATE)) is not None:
        yield Finding(where, utt.id, problem, True)
