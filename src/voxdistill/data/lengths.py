"""Training clips whose lengths cover what users send, made from a pool of recordings.

A student learns the clip lengths it is trained on. Read sentences last 2–10 s, but users send a
30 s stretch of a meeting (the teacher's whole window) as readily as one spoken word: a student
that never saw long clips drops words from them, and one that never saw clips under a second
invents words to fill them (distil-large-v2, trained on ~7 s clips, was good only to ~15 s;
Moonshine's tiny model repeats itself on sub-second clips). From a pool of recordings this module
makes three more kinds of clip:

- **packed** clips: consecutive utterances of one speaker joined with short gaps of silence, to
  a length drawn between ``pack_seconds`` (up to the teacher's window);
- **pieces**: single stretches of sound between pauses (`long_audio.sounding_spans`), between
  ``piece_seconds``: isolated words and short phrases, cut from real speech;
- **short pieces**: the same, under a second (``short_piece_seconds``). Connected speech seldom
  pauses around a single word, so pieces drawn over 0.3-2 s are mostly phrases; these are drawn
  apart, because a student that trained on few sub-second clips loops on a spoken digit
  ("9. 9. 9. 9.").

A clip's text is its parts' texts joined where every part has one (a piece has none: nobody knows
which words it holds); otherwise the teacher labels it like any unlabelled clip. Each clip is a pure
function of (pool, settings, seed), and its file name carries a hash of its sources and cuts, so a
rebuild reuses what is still wanted.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import defaultdict
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import soundfile as sf

from voxdistill.audio import SAMPLE_RATE, load_audio
from voxdistill.data.manifest import Utterance, read_manifest, write_manifest
from voxdistill.errors import VoxdistillError
from voxdistill.files import file_written_atomically
from voxdistill.long_audio import sounding_spans


@dataclass(frozen=True)
class LengthMix:
    packed: int = 40  # packed clips to make
    pack_seconds: tuple[float, float] = (12.0, 28.0)  # each packed clip's length is drawn between these
    gap_seconds: tuple[float, float] = (0.2, 0.8)  # silence between the utterances of a packed clip
    pieces: int = 60  # pieces of ``piece_seconds`` to make, at most one per pool utterance
    piece_seconds: tuple[float, float] = (0.3, 2.0)  # a piece's length lies between these
    short_pieces: int = 0  # sub-second pieces to make besides, at most one per pool utterance
    short_piece_seconds: tuple[float, float] = (0.3, 1.0)  # a short piece's length lies between these

    def __post_init__(self):
        if min(self.packed, self.pieces, self.short_pieces) < 0:
            raise VoxdistillError(f"packed, pieces and short_pieces must be >= 0, got {self.packed}, {self.pieces} "
                                  f"and {self.short_pieces}")
        for name, (low, high) in (("pack_seconds", self.pack_seconds), ("gap_seconds", self.gap_seconds),
                                  ("piece_seconds", self.piece_seconds),
                                  ("short_piece_seconds", self.short_piece_seconds)):
            if not 0 <= low <= high:
                raise VoxdistillError(f"{name} must be (low, high) with 0 <= low <= high, got {(low, high)}")


def _clip_name(kind: str, index: int, recipe: object) -> str:
    digest = hashlib.sha256(json.dumps(recipe).encode()).hexdigest()[:12]
    return f"{kind}-{index:04d}-{digest}"


def _write_clip(folder: Path, name: str, make_audio) -> tuple[str, float]:
    """Write (or reuse) ``folder/name.flac``; returns its path and duration."""
    path = folder / f"{name}.flac"
    if not path.is_file():
        audio = make_audio()
        with file_written_atomically(path) as tmp:
            sf.write(tmp, audio, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    return str(path.resolve()), round(sf.info(path).frames / SAMPLE_RATE, 3)


def _joined_text(parts: list[Utterance]) -> str | None:
    texts = [u.text for u in parts]
    return None if any(t is None for t in texts) else " ".join(t.strip() for t in texts)


def packed_clips(pool: list[Utterance], manifest_dir: Path, folder: Path, mix: LengthMix,
                 rng: random.Random) -> list[Utterance]:
    """``mix.packed`` clips, each of one speaker's consecutive utterances (in pool order) and gaps;
    speakers take turns, so every voice of the pool is packed."""
    by_voice: dict[str | None, list[Utterance]] = defaultdict(list)
    for utt in pool:
        by_voice[utt.voice].append(utt)
    voices = sorted((v for v in by_voice if len(by_voice[v]) > 1), key=str)  # one utterance packs into nothing longer
    if not voices:
        return []
    cursor = {v: rng.randrange(len(by_voice[v])) for v in voices}
    clips: list[Utterance] = []
    low, high = mix.pack_seconds
    for index in range(mix.packed):
        voice = voices[index % len(voices)]
        utterances = by_voice[voice]
        target = rng.uniform(low, high)
        parts: list[Utterance] = []
        gaps: list[float] = []
        length = 0.0
        while len(parts) < len(utterances):
            utt = utterances[cursor[voice] % len(utterances)]
            gap = round(rng.uniform(*mix.gap_seconds), 2) if parts else 0.0
            longer = length + gap + utt.duration
            if parts and (longer > high or len(parts) >= 2 and longer > target):
                break
            parts.append(utt)
            gaps.append(gap)
            length += gap + utt.duration
            cursor[voice] += 1
        if len(parts) < 2:
            continue  # one utterance alone is no longer than the pool already has

        def audio(parts=parts, gaps=gaps) -> np.ndarray:
            pieces = []
            for utt, gap in zip(parts, gaps):
                pieces += [np.zeros(int(gap * SAMPLE_RATE), dtype=np.float32), load_audio(utt.audio_path(manifest_dir))]
            return np.concatenate(pieces)

        name = _clip_name("packed", index, [[u.id for u in parts], gaps])
        path, duration = _write_clip(folder, name, audio)
        clips.append(Utterance(id=name.rsplit("-", 1)[0] + f"-{parts[0].id}", audio_filepath=path, duration=duration,
                               text=_joined_text(parts), domain=parts[0].domain, voice=voice,
                               extra={"packed_from": [u.id for u in parts]}))
    return clips


def pieces(pool: list[Utterance], manifest_dir: Path, folder: Path, count: int, seconds: tuple[float, float],
           rng: random.Random, kind: str = "piece",
           taken: AbstractSet[tuple[str, int, int]] = frozenset()) -> list[Utterance]:
    """Up to ``count`` stretches of sound between pauses lasting between ``seconds``, one per pool
    utterance at most, drawn from utterances in a seeded order; a cut in ``taken`` (utterance id,
    start, end in samples) is not made again."""
    order = list(pool)
    rng.shuffle(order)
    low, high = seconds
    clips: list[Utterance] = []
    for utt in order:
        if len(clips) == count:
            break
        audio = load_audio(utt.audio_path(manifest_dir))
        spans = [(a, b) for a, b in sounding_spans(audio)
                 if low * SAMPLE_RATE <= b - a <= high * SAMPLE_RATE and (utt.id, a, b) not in taken]
        if not spans or len(spans) == 1 and spans[0] == (0, len(audio)):
            continue
        start, end = spans[rng.randrange(len(spans))]
        name = _clip_name(kind, len(clips), [utt.id, start, end])
        path, duration = _write_clip(folder, name, lambda a=audio, s=start, e=end: a[s:e])
        clips.append(Utterance(id=f"{kind}-{len(clips):04d}-{utt.id}", audio_filepath=path, duration=duration,
                               domain=utt.domain, voice=utt.voice,
                               extra={"cut_from": utt.id, "cut_seconds": [start / SAMPLE_RATE, end / SAMPLE_RATE]}))
    return clips


def _cut(clip: Utterance) -> tuple[str, int, int]:
    start, end = clip.extra["cut_seconds"]
    return clip.extra["cut_from"], round(start * SAMPLE_RATE), round(end * SAMPLE_RATE)


def build_length_mix(pool_manifest: Path, out: Path, mix: LengthMix, seed: int) -> Path:
    """Packed clips, pieces and short pieces of the utterances in ``pool_manifest``, audio under
    ``out/audio/``, listed in ``out/lengths.jsonl`` (returned)."""
    pool = list(read_manifest(pool_manifest))
    manifest_dir = pool_manifest.parent
    rng = random.Random(seed)
    clips = packed_clips(pool, manifest_dir, out / "audio" / "packed", mix, rng)
    made = pieces(pool, manifest_dir, out / "audio" / "pieces", mix.pieces, mix.piece_seconds, rng)
    made += pieces(pool, manifest_dir, out / "audio" / "pieces", mix.short_pieces, mix.short_piece_seconds, rng,
                   kind="short", taken={_cut(c) for c in made})
    clips += made
    wanted = {Path(c.audio_filepath).name for c in clips}
    for kind in ("packed", "pieces"):  # clips of earlier settings go: the folder holds what the manifest lists
        for stale in (out / "audio" / kind).glob("*.flac"):
            if stale.name not in wanted:
                stale.unlink()
    manifest = out / "lengths.jsonl"
    # Paths relative to the manifest's folder, so a corpus folder moved or copied stays whole.
    root = out.resolve()
    write_manifest(manifest, [replace(c, audio_filepath=str(Path(c.audio_filepath).relative_to(root))) for c in clips])
    return manifest
