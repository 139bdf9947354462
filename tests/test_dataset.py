"""Streaming batches: features equal the model's extractor, bounded reading, deterministic order,
sharding, augmentation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from transformers import WhisperProcessor

from tests.conftest import SPEECH
from voxdistill.audio import load_audio
from voxdistill.data.dataset import Augmentation, BatchingConfig, SpeechDataset, length_bucketed_batches
from voxdistill.data.manifest import Utterance, write_manifest


@pytest.fixture(scope="module")
def feature_extractor(tiny_en_folder):
    return WhisperProcessor.from_pretrained(tiny_en_folder).feature_extractor


@pytest.fixture
def speech_manifest(speech_dir, tmp_path):
    utts = [Utterance(name, str(speech_dir / f"{name}.wav"), round(sf.info(str(speech_dir / f"{name}.wav")).duration, 3),
                      text=text) for name, (_, text) in SPEECH.items()]
    path = tmp_path / "speech.jsonl"
    write_manifest(path, utts)
    return path


def test_features_equal_the_model_feature_extractor(speech_manifest, speech_dir, feature_extractor):
    dataset = SpeechDataset(speech_manifest, feature_extractor, BatchingConfig(batch_size=2, bucket_size=4, shuffle_buffer=0))
    batches = list(dataset)
    assert sum(len(b.ids) for b in batches) == len(SPEECH)
    for batch in batches:
        for i, utt_id in enumerate(batch.ids):
            # The 22.05 kHz espeak file is resampled by load_audio, then featurised by the model's extractor.
            expected = feature_extractor(load_audio(speech_dir / f"{utt_id}.wav"), sampling_rate=16000,
                                         return_tensors="pt").input_features[0]
            # A batch of two against one clip alone: the same arithmetic, but another batch shape, which a
            # CPU's kernels may sum in another order; a wrong clip, resampling or padding is off by far more.
            torch.testing.assert_close(batch.input_features[i], expected, rtol=0, atol=1e-5)
            assert batch.texts[i] == SPEECH[utt_id][1]


def fake_items(n, seed=0):
    rng = np.random.default_rng(seed)
    return [Utterance(f"u{i}", f"u{i}.wav", float(rng.uniform(1, 20))) for i in range(n)]


def test_buckets_sort_by_length_and_keep_every_item():
    items = fake_items(50)
    batches = list(length_bucketed_batches(items, batch_size=4, bucket_size=20))
    assert sorted(u.id for b in batches for u in b) == sorted(u.id for u in items)
    # Within a bucket, batches hold neighbours in duration: each batch is sorted and the first
    # five batches (bucket 1) cover the first 20 items.
    assert all([u.duration for u in b] == sorted(u.duration for u in b) for b in batches)
    assert {u.id for b in batches[:5] for u in b} == {u.id for u in items[:20]}


def write_lines(path, n, broken_at=None):
    with path.open("w") as f:
        for i in range(n):
            f.write("{broken\n" if i == broken_at else json.dumps({"id": f"u{i}", "audio_filepath": "x.wav", "duration": 1 + i % 7}) + "\n")


def test_plan_reads_the_manifest_lazily(tmp_path, feature_extractor):
    # A manifest of 100k lines with a broken line far down: taking the first batches never gets there,
    # so memory is bounded by the buffers, not the manifest.
    path = tmp_path / "big.jsonl"
    write_lines(path, 100_000, broken_at=50_000)
    config = BatchingConfig(batch_size=8, bucket_size=64, shuffle_buffer=256)
    plan = SpeechDataset(path, feature_extractor, config).batch_plan()
    first = [next(plan) for _ in range(100)]
    assert len({u.id for b in first for u in b}) == 800


def test_order_is_a_pure_function_of_seed_and_epoch(tmp_path, feature_extractor):
    path = tmp_path / "m.jsonl"
    write_lines(path, 300)

    def order(seed, epoch):
        ds = SpeechDataset(path, feature_extractor, BatchingConfig(batch_size=4, bucket_size=16, shuffle_buffer=32, seed=seed), epoch=epoch)
        return [[u.id for u in b] for b in ds.batch_plan()]

    assert order(0, 0) == order(0, 0)
    assert order(0, 0) != order(0, 1)
    assert order(0, 0) != order(1, 0)
    assert sorted(i for b in order(0, 1) for i in b) == sorted(f"u{i}" for i in range(300))


def test_ranks_and_resume_partition_the_batches(speech_manifest, feature_extractor):
    config = BatchingConfig(batch_size=1, bucket_size=1, shuffle_buffer=0)
    everything = [b.ids[0] for b in SpeechDataset(speech_manifest, feature_extractor, config)]
    rank0 = [b.ids[0] for b in SpeechDataset(speech_manifest, feature_extractor, config, rank=0, world_size=2)]
    rank1 = [b.ids[0] for b in SpeechDataset(speech_manifest, feature_extractor, config, rank=1, world_size=2)]
    assert sorted(rank0 + rank1) == sorted(everything) and not set(rank0) & set(rank1)
    resumed = [b.ids[0] for b in SpeechDataset(speech_manifest, feature_extractor, config, start_batch=1)]
    assert resumed == everything[1:]


def test_augmentation_is_deterministic_per_utterance(speech_manifest, feature_extractor):
    config = BatchingConfig(batch_size=3, bucket_size=3, shuffle_buffer=0)
    aug = Augmentation(noise_probability=1.0)
    a = list(SpeechDataset(speech_manifest, feature_extractor, config, augmentation=aug))[0]
    b = list(SpeechDataset(speech_manifest, feature_extractor, config, augmentation=aug))[0]
    clean = list(SpeechDataset(speech_manifest, feature_extractor, config))[0]
    other_epoch = list(SpeechDataset(speech_manifest, feature_extractor, config, augmentation=aug, epoch=1))[0]
    assert torch.equal(a.input_features, b.input_features)
    assert not torch.equal(a.input_features, clean.input_features)
    assert not torch.equal(a.input_features, other_epoch.input_features)
