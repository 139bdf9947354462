"""The real-speech pack: about two hours of real human speech shipped inside the package, and the
manifests built from it.

The synthetic corpus is where domains are made at will; real voices are what decide whether a
student can replace its teacher. The design:

- **The pack is package data** (``speech_pack/``, made by ``scripts/pack_real_speech.py``): one Ogg
  Opus file per clip in ``<part>/``, the transcripts of labelled parts in ``<part>/transcripts.tsv``,
  and ``SOURCES.tsv`` with every file's origin, licence and sha256. ``check_pack`` verifies it, and
  every build does, so a damaged install fails naming the file instead of training on it.
- **Each part has one role.** kathleen, ljspeech and unlabelled are the training pool, used the way
  a user's own audio is: ``real-pool.jsonl`` has no text at all, the teacher labels it, and the
  transcripts the sources have go to ``real-pool-references.jsonl`` only to measure label quality.
  ``real-dev.jsonl`` holds harvard (speakers who never train) plus clips of the pool's parts held
  out of the pool. vctk, spontaneous, digits and longform are test sets (TEST_SETS) of speakers and
  styles that never train.
- **A preset only sizes the pool and dev set.** Clips are taken at evenly spaced positions of their
  part in name order, dev first and the pool from what is left, so the same preset gives the same
  manifests on every machine and dev clips are never in the pool.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from voxdistill.audio import audio_duration
from voxdistill.data.corpus import SplitSummary
from voxdistill.data.manifest import Utterance, write_manifest
from voxdistill.errors import VoxdistillError
from voxdistill.files import sha256_of_files, write_text_atomic

PACK = Path(__file__).resolve().parent.parent / "speech_pack"
SOURCES = "SOURCES.tsv"
TRANSCRIPTS = "transcripts.tsv"
SOURCE_COLUMNS = ("part", "file", "duration_s", "speaker", "origin_repo", "origin_commit", "origin_path",
                  "license", "sha256")

POOL_PARTS = ("kathleen", "ljspeech", "unlabelled")
UNLABELLED_PARTS = ("unlabelled",)  # shipped without transcripts
DEV_ONLY_PARTS = ("harvard",)
TEST_SETS = {"test-real-read": "vctk", "test-real-spontaneous": "spontaneous",
             "test-real-words": "digits", "test-real-longform": "longform"}  # manifest name -> part
ANNOTATED_PARTS = ("spontaneous",)  # transcripts carry tags such as <cutoff-montreal>, [laughter]
# Buckeye-style tags: <hes-WORD> is a word said hesitantly, so WORD was spoken and stays; every other
# tag (<cutoff-WORD>, a word broken off; <VOCNOISE>; <unk>; [laughter]) is not a spoken word.
_HESITANT_WORD = re.compile(r"<hes-([^>]+)>")
_ANNOTATION = re.compile(r"<[^>]*>|\[[^\]]*\]")


class SpeechPackError(VoxdistillError):
    """The real-speech pack is incomplete or damaged, or a preset asks for more clips than it has."""


@dataclass(frozen=True)
class PackClip:
    part: str
    name: str  # file name without extension, unique within its part
    path: Path  # absolute
    speaker: str
    duration: float  # seconds, as SOURCES.tsv records
    sha256: str
    text: str | None  # the source's transcript; None in unlabelled parts

    @property
    def id(self) -> str:
        return f"{self.part}-{self.name}"

    @property
    def reference(self) -> str | None:
        """The transcript to score against: annotation tags removed, whitespace collapsed."""
        if self.text is None or self.part not in ANNOTATED_PARTS:
            return self.text
        return strip_annotations(self.text)


def strip_annotations(text: str) -> str:
    """``text`` without its ``<...>`` and ``[...]`` tags (``<hes-WORD>`` becomes ``WORD``), runs of
    whitespace made one space."""
    return " ".join(_ANNOTATION.sub(" ", _HESITANT_WORD.sub(r" \1 ", text)).split())


def write_tsv(path: Path, header: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """Tab-separated lines with a header, written atomically; a tab or line break inside a field
    would shift the columns, so it is refused."""
    lines = [header, *rows]
    for fields in lines:
        if any(c in field for field in fields for c in "\t\n\r"):
            raise ValueError(f"{path}: a field holds a tab or line break: {fields}")
    write_text_atomic(path, "".join("\t".join(fields) + "\n" for fields in lines))


def _read_tsv(path: Path, columns: Sequence[str]) -> list[dict[str, str]]:
    if not path.is_file():
        raise SpeechPackError(f"{path}: missing from the real-speech pack; reinstall voxdistill (in a "
                              f"checkout, restore src/voxdistill/speech_pack from git)")
    header, *lines = path.read_text(encoding="utf-8").splitlines()
    if tuple(header.split("\t")) != tuple(columns):
        raise SpeechPackError(f"{path}: columns {header.split(chr(9))}, expected {list(columns)}")
    rows = [line.split("\t") for line in lines]
    for number, fields in enumerate(rows, start=2):
        if len(fields) != len(columns):
            raise SpeechPackError(f"{path}:{number}: {len(fields)} fields, expected {len(columns)}")
    return [dict(zip(columns, fields)) for fields in rows]


def read_pack(pack: Path = PACK) -> list[PackClip]:
    """The clips SOURCES.tsv lists, with their transcripts, in its order. Reads no audio. Raises
    SpeechPackError naming the file when SOURCES.tsv or a transcripts file is missing or malformed,
    or a clip of a labelled part has no transcript."""
    pack = pack.resolve()
    rows = _read_tsv(pack / SOURCES, SOURCE_COLUMNS)
    texts: dict[str, dict[str, str]] = {}
    clips = []
    for row in rows:
        part, name = row["part"], Path(row["file"]).stem
        text = None
        if part not in UNLABELLED_PARTS:
            if part not in texts:
                texts[part] = {r["name"]: r["text"] for r in _read_tsv(pack / part / TRANSCRIPTS, ("name", "text"))}
            text = texts[part].get(name)
            if not text:
                raise SpeechPackError(f"{pack / part / row['file']}: no transcript in {pack / part / TRANSCRIPTS}")
        clips.append(PackClip(part, name, pack / part / row["file"], row["speaker"], float(row["duration_s"]),
                              row["sha256"], text))
    return clips


def check_pack(pack: Path = PACK) -> list[PackClip]:
    """``read_pack``, and every file present with the sha256 SOURCES.tsv records (about 30 MB read).
    Raises SpeechPackError naming the first file at fault."""
    clips = read_pack(pack)
    for clip in clips:
        if not clip.path.is_file():
            raise SpeechPackError(f"{clip.path}: listed in {SOURCES} but missing; reinstall voxdistill (in a "
                                  f"checkout, restore src/voxdistill/speech_pack from git)")
        if sha256_of_files([clip.path]) != clip.sha256:
            raise SpeechPackError(f"{clip.path}: damaged (its sha256 differs from the one in {SOURCES}); "
                                  f"reinstall voxdistill (in a checkout, restore it from git)")
    return clips


@dataclass(frozen=True)
class RealSpeechPreset:
    name: str
    pool: dict[str, int | None]  # pool part -> clips in the training pool; None: all not in dev
    dev: dict[str, int]  # part -> clips in real-dev: a dev-only part, or clips held out of a pool part
    test_clips: int | None = None  # clips per test set, evenly spaced; None: every clip of its part

    def __post_init__(self) -> None:
        if set(self.pool) - set(POOL_PARTS):
            raise ValueError(f"preset {self.name}: pool parts must be among {POOL_PARTS}, got {sorted(self.pool)}")
        dev_parts = set(POOL_PARTS + DEV_ONLY_PARTS) - set(UNLABELLED_PARTS)
        if set(self.dev) - dev_parts:
            raise ValueError(f"preset {self.name}: dev parts must be among {sorted(dev_parts)}, got {sorted(self.dev)}")
        counts = [n for n in (*self.pool.values(), *self.dev.values(), self.test_clips) if n is not None]
        if any(n < 1 for n in counts):
            raise ValueError(f"preset {self.name}: clip counts must be at least 1 (None: every clip)")


_DEV = {"harvard": 12, "kathleen": 20, "ljspeech": 16}  # the same dev set for every preset
REAL_PRESETS = {
    # Sized for the demo pipeline on a 2-core CPU: 430 clips, 35 minutes of audio to pseudo-label.
    "demo": RealSpeechPreset("demo", pool={"kathleen": 240, "ljspeech": 100, "unlabelled": 90}, dev=_DEV),
    "full": RealSpeechPreset("full", pool={part: None for part in POOL_PARTS}, dev=_DEV),
}


def _evenly_spaced(clips: list[PackClip], count: int | None, what: str) -> list[PackClip]:
    """``count`` of ``clips`` at evenly spaced positions (every one for None), in their order."""
    if count is None:
        return clips
    if count > len(clips):
        raise SpeechPackError(f"{what}: {count} clips asked for, the pack has {len(clips)}")
    return [clips[(2 * i + 1) * len(clips) // (2 * count)] for i in range(count)]


def plan_real_speech(clips: list[PackClip], preset: RealSpeechPreset) -> dict[str, list[PackClip]]:
    """Manifest name -> its clips: ``real-pool``, ``real-dev`` and the TEST_SETS."""
    by_part: dict[str, list[PackClip]] = {}
    for clip in sorted(clips, key=lambda c: (c.part, c.name)):
        by_part.setdefault(clip.part, []).append(clip)
    dev = [clip for part, count in preset.dev.items()
           for clip in _evenly_spaced(by_part.get(part, []), count, f"preset {preset.name}, dev from {part}")]
    held_out = {clip.id for clip in dev}
    pool = [clip for part, count in preset.pool.items()
            for clip in _evenly_spaced([c for c in by_part.get(part, []) if c.id not in held_out], count,
                                       f"preset {preset.name}, pool from {part}")]
    tests = {name: _evenly_spaced(by_part.get(part, []), preset.test_clips and min(preset.test_clips, len(by_part.get(part, []))),
                                  f"preset {preset.name}, test set {name}")
             for name, part in TEST_SETS.items()}
    return {"real-pool": pool, "real-dev": dev, **tests}


def _utterance(clip: PackClip) -> Utterance:
    return Utterance(id=clip.id, audio_filepath=str(clip.path), duration=round(audio_duration(clip.path), 3),
                     text=clip.reference, domain=f"real-{clip.part}", voice=clip.speaker)


def build_real_speech(out: Path, preset: RealSpeechPreset, pack: Path = PACK) -> list[SplitSummary]:
    """Check the pack, then write into ``out`` (each file atomically; the same preset and pack give
    the same bytes): ``real-pool.jsonl`` (no text), ``real-pool-references.jsonl`` (the pool clips
    that have a transcript, with it), ``real-dev.jsonl``, one ``<test set>.jsonl`` per TEST_SETS
    entry, and ``real-speech.json`` recording the preset and the pack's SOURCES.tsv hash. Audio
    paths are absolute paths into the pack. Returns one summary per manifest."""
    clips = check_pack(pack)
    plan = plan_real_speech(clips, preset)
    pool = [_utterance(clip) for clip in plan.pop("real-pool")]
    manifests = {"real-pool": [replace(u, text=None) for u in pool],
                 "real-pool-references": [u for u in pool if u.text is not None],
                 **{name: [_utterance(clip) for clip in chosen] for name, chosen in plan.items()}}
    summaries = []
    for name, utterances in manifests.items():
        write_manifest(out / f"{name}.jsonl", utterances)
        summaries.append(SplitSummary(name, len(utterances), sum(u.duration for u in utterances) / 3600,
                                      len({u.voice for u in utterances}), len({u.domain for u in utterances}), 0))
    write_text_atomic(out / "real-speech.json", json.dumps({
        "preset": asdict(preset), "pack_sources_sha256": sha256_of_files([pack / SOURCES]),
        "manifests": [asdict(s) for s in summaries],
    }, indent=2) + "\n")
    return summaries
