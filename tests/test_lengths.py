"""Training clips that cover the lengths users send: packed clips of one speaker's utterances and
short pieces cut at pauses, made from real recordings (espeak-ng speech written to files)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voxdistill.audio import SAMPLE_RATE
from voxdistill.data.lengths import LengthMix, build_length_mix
from voxdistill.data.manifest import ManifestError, Utterance, concatenate_manifests, read_manifest, write_manifest
from voxdistill.data.tts import Voice, synthesize
from voxdistill.errors import VoxdistillError
from voxdistill.long_audio import sounding_spans

SENTENCES = ["Please call the office before noon.", "The river was wide and cold that morning.",
             "Seven ships sailed past the harbour wall.", "She wrote every answer in green ink.",
             "Bring the map, the rope and a small lamp.", "Nobody heard the bell ring twice."]


@pytest.fixture(scope="module")
def pool(tmp_path_factory) -> Path:
    """Six utterances by two voices, each followed by half a second of silence."""
    folder = tmp_path_factory.mktemp("pool")
    utterances = []
    for i, sentence in enumerate(SENTENCES):
        voice = Voice("espeak-ng", "en-us" if i % 2 else "en-gb")
        audio = np.concatenate([synthesize(voice, sentence), np.zeros(SAMPLE_RATE // 2, np.float32)])
        sf.write(folder / f"u{i}.wav", audio, SAMPLE_RATE)
        utterances.append(Utterance(id=f"u{i}", audio_filepath=f"u{i}.wav", duration=len(audio) / SAMPLE_RATE,
                                    voice=voice.name, domain="real"))
    write_manifest(folder / "pool.jsonl", utterances)
    return folder / "pool.jsonl"


def test_sounding_spans_split_at_pauses_and_keep_every_word():
    tone = np.sin(np.arange(SAMPLE_RATE // 2) * 0.2).astype(np.float32)
    silence = np.zeros(SAMPLE_RATE // 2, np.float32)
    audio = np.concatenate([silence, tone, silence, tone, silence])
    spans = sounding_spans(audio)
    assert len(spans) == 2
    for (start, end), tone_start in zip(spans, (SAMPLE_RATE // 2, 3 * SAMPLE_RATE // 2)):
        assert start <= tone_start and end >= tone_start + len(tone)  # no part of the sound is cut off
    assert sounding_spans(np.zeros(SAMPLE_RATE, np.float32)) == []


def test_packed_clips_join_one_speakers_utterances_in_order(pool, tmp_path):
    manifest = build_length_mix(pool, tmp_path, LengthMix(packed=2, pieces=0, pack_seconds=(4.0, 12.0)), seed=1)
    clips = list(read_manifest(manifest))
    assert len(clips) == 2
    sources = {u.id: u for u in read_manifest(pool)}
    for clip in clips:
        parts = clip.extra["packed_from"]
        assert len(parts) >= 2 and len({sources[p].voice for p in parts}) == 1 and clip.voice == sources[parts[0]].voice
        audio, rate = sf.read(clip.audio_path(manifest.parent), dtype="float32")
        assert rate == SAMPLE_RATE and abs(len(audio) / rate - clip.duration) < 1e-3
        # the parts and their gaps, nothing else
        expected = sum(sources[p].duration for p in parts)
        assert expected <= clip.duration <= expected + 0.8 * (len(parts) - 1) + 1e-3
        assert clip.duration <= 12.0
        assert clip.text is None  # the pool has no transcripts: the teacher labels the clip


def test_packed_clips_join_texts_when_every_part_has_one(pool, tmp_path):
    labelled = [Utterance(**{**u.__dict__, "text": SENTENCES[int(u.id[1:])]}) for u in read_manifest(pool)]
    write_manifest(pool.parent / "labelled.jsonl", labelled)
    clip = next(read_manifest(build_length_mix(pool.parent / "labelled.jsonl", tmp_path,
                                               LengthMix(packed=1, pieces=0, pack_seconds=(4.0, 12.0)), seed=1)))
    assert clip.text == " ".join(SENTENCES[int(p[1:])] for p in clip.extra["packed_from"])


def test_pieces_are_short_cuts_of_their_source(pool, tmp_path):
    mix = LengthMix(packed=0, pieces=4, piece_seconds=(0.2, 1.5))
    clips = list(read_manifest(build_length_mix(pool, tmp_path, mix, seed=0)))
    assert 1 <= len(clips) <= 4
    assert len({c.extra["cut_from"] for c in clips}) == len(clips)  # one piece per utterance at most
    for clip in clips:
        assert 0.2 <= clip.duration <= 1.5 and clip.text is None
        source, _ = sf.read(pool.parent / f"{clip.extra['cut_from']}.wav", dtype="float32")
        piece, _ = sf.read(clip.audio_path(tmp_path), dtype="float32")
        start = round(clip.extra["cut_seconds"][0] * SAMPLE_RATE)
        assert np.allclose(piece, source[start : start + len(piece)], atol=1 / 2**14)  # PCM-16 rounding


def test_short_pieces_are_sub_second_and_never_repeat_a_piece(pool, tmp_path):
    # The pool's one pause splits "Bring the map, the rope and a small lamp." into 0.75 s and 2.41 s.
    mix = LengthMix(packed=0, pieces=6, piece_seconds=(1.0, 3.0), short_pieces=6, short_piece_seconds=(0.2, 1.0))
    clips = list(read_manifest(build_length_mix(pool, tmp_path / "both", mix, seed=0)))
    assert sorted(c.id.split("-")[0] for c in clips) == ["piece", "short"]
    short = next(c for c in clips if c.id.startswith("short-"))
    assert 0.2 <= short.duration <= 1.0 and short.text is None and short.extra["cut_seconds"][0] == 0
    # Pieces that take the sub-second stretch first leave no short piece to cut: none is made twice.
    mix = LengthMix(packed=0, pieces=6, piece_seconds=(0.2, 1.5), short_pieces=6, short_piece_seconds=(0.2, 1.0))
    clips = list(read_manifest(build_length_mix(pool, tmp_path / "taken", mix, seed=0)))
    assert [c.id.split("-")[0] for c in clips] == ["piece"]


def test_a_rebuild_is_the_same_and_drops_clips_no_longer_wanted(pool, tmp_path):
    mix = LengthMix(packed=2, pieces=3, pack_seconds=(4.0, 12.0))
    first = (build_length_mix(pool, tmp_path, mix, seed=3)).read_text()
    assert build_length_mix(pool, tmp_path, mix, seed=3).read_text() == first
    build_length_mix(pool, tmp_path, LengthMix(packed=1, pieces=0, pack_seconds=(4.0, 12.0)), seed=4)
    listed = {Path(json.loads(line)["audio_filepath"]).name
              for line in (tmp_path / "lengths.jsonl").read_text().splitlines()}
    on_disk = {p.name for p in (tmp_path / "audio").rglob("*.flac")}
    assert on_disk == listed and len(listed) == 1


def test_a_copied_corpus_folder_reads_its_own_clips(pool, tmp_path):
    import shutil

    build_length_mix(pool, tmp_path / "corpus", LengthMix(packed=1, pieces=1, pack_seconds=(4.0, 12.0)), seed=2)
    shutil.copytree(tmp_path / "corpus", tmp_path / "copy")
    shutil.rmtree(tmp_path / "corpus")
    clips = list(read_manifest(tmp_path / "copy" / "lengths.jsonl"))
    assert clips and all(not Path(c.audio_filepath).is_absolute() for c in clips)
    assert all(c.audio_path(tmp_path / "copy").is_file() for c in clips)


def test_bad_settings_are_refused():
    with pytest.raises(VoxdistillError, match="pack_seconds"):
        LengthMix(pack_seconds=(20.0, 10.0))
    with pytest.raises(VoxdistillError, match="packed, pieces and short_pieces"):
        LengthMix(packed=-1)
    with pytest.raises(VoxdistillError, match="short_piece_seconds"):
        LengthMix(short_piece_seconds=(1.0, 0.5))


def test_concatenated_manifests_resolve_paths_and_refuse_shared_ids(pool, tmp_path):
    n = concatenate_manifests(tmp_path / "both.jsonl", [pool])
    joined = list(read_manifest(tmp_path / "both.jsonl"))
    assert n == len(joined) == len(SENTENCES)
    assert all(Path(u.audio_filepath).is_absolute() and Path(u.audio_filepath).is_file() for u in joined)
    with pytest.raises(ManifestError, match="u0"):
        concatenate_manifests(tmp_path / "twice.jsonl", [pool, pool])
    assert not (tmp_path / "twice.jsonl").exists()
