"""The built-in corpus, built for real (every engine) at a small size."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import soundfile as sf

from voxdistill.data.corpus import (
    HELD_OUT_DOMAINS, HELD_OUT_VOICES, PRESETS, SPLITS, TRAIN_DOMAINS, TRAIN_VOICES, CorpusPreset,
    build_corpus, plan_corpus,
)
from voxdistill.data.manifest import read_manifest
from voxdistill.data.text import sentence_key

SMALL = CorpusPreset("small", {"train": 14, "dev": 4, "test-clean": 4, "test-ood-voice": 8, "test-ood-noise": 7},
                     max_words=12)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    summaries = build_corpus(SMALL, out, seed=3, jobs=2, progress=False)
    return out, summaries


def manifests(out):
    return {split: list(read_manifest(out / f"{split}.jsonl")) for split in SPLITS}


def audio_digest(out, utts):
    h = hashlib.sha256()
    for u in utts:
        samples, rate = sf.read(str(u.audio_path(out)), dtype="int16")
        h.update(u.id.encode() + samples.tobytes() + str(rate).encode())
    return h.hexdigest()


def test_splits_sizes_and_audio_format(corpus):
    out, summaries = corpus
    splits = manifests(out)
    for s in summaries:
        assert s.utterances + s.dropped == SMALL.sizes[s.split]
        assert len(splits[s.split]) == s.utterances
    for utts in splits.values():
        for u in utts:
            info = sf.info(str(u.audio_path(out)))
            assert info.samplerate == 16000 and info.channels == 1
            assert abs(info.duration - u.duration) < 1e-3 and 1.0 <= u.duration <= 20.0
            assert u.text and u.voice and u.domain


def test_no_sentence_in_two_splits(corpus):
    seen = {}
    for split, utts in manifests(corpus[0]).items():
        for u in utts:
            key = sentence_key(u.text)
            assert seen.setdefault(key, split) == split, (u.text, split, seen[key])


def test_held_out_voices_and_domains_never_in_training(corpus):
    splits = manifests(corpus[0])
    train_dev = splits["train"] + splits["dev"]
    held_out = {f"{v.engine}:{v.name}" for v in HELD_OUT_VOICES}
    assert not held_out & {u.voice for u in train_dev}
    assert {u.voice for u in splits["test-ood-voice"]} <= held_out
    assert "piper" in {u.voice.split(":")[0] for u in splits["test-ood-voice"]}
    assert not {u.voice.split(":")[0] for u in train_dev} & {"piper"}
    assert not set(HELD_OUT_DOMAINS) & {u.domain for u in train_dev}
    assert {u.domain for u in splits["test-ood-noise"]} <= set(HELD_OUT_DOMAINS)
    assert {u.domain for u in splits["test-clean"] + splits["test-ood-voice"]} == {"clean"}
    assert {u.voice for u in splits["test-clean"] + splits["test-ood-noise"]} <= {f"{v.engine}:{v.name}" for v in TRAIN_VOICES}


def test_same_seed_same_corpus_and_rebuild_reuses_files(corpus, tmp_path):
    out, _ = corpus
    again = tmp_path / "again"
    build_corpus(SMALL, again, seed=3, jobs=1, progress=False)
    first, second = manifests(out), manifests(again)
    for split in SPLITS:
        assert [u.to_json() for u in first[split]] == [u.to_json() for u in second[split]]
        assert audio_digest(out, first[split]) == audio_digest(again, second[split])
    # A second build in the same folder synthesises nothing: every file keeps its mtime.
    mtimes = {p: p.stat().st_mtime_ns for p in again.rglob("*.flac")}
    build_corpus(SMALL, again, seed=3, jobs=1, progress=False)
    assert {p: p.stat().st_mtime_ns for p in again.rglob("*.flac")} == mtimes


def test_another_seed_changes_the_plan():
    a, b = plan_corpus(SMALL, seed=0), plan_corpus(SMALL, seed=1)
    assert [s.text for s in a] != [s.text for s in b]


def test_presets_cover_enough_voices_and_engines():
    voices = {(v.engine, v.name) for v in TRAIN_VOICES + HELD_OUT_VOICES}
    assert len(voices) >= 10 and len({engine for engine, _ in voices}) >= 4
    assert set(TRAIN_DOMAINS).isdisjoint(HELD_OUT_DOMAINS)
    specs = plan_corpus(PRESETS["demo"], seed=0)
    assert len(specs) == sum(PRESETS["demo"].sizes.values())
    assert np.isclose(sum(TRAIN_DOMAINS.values()), 1.0)
