"""Streaming speech batches from a manifest: bounded memory, length buckets, log-mel features.

The pipeline is ``manifest lines -> shuffle buffer -> length buckets -> batches -> audio -> features``.
Only ``shuffle_buffer + bucket_size`` utterance *records* and one batch of audio are held at once,
whatever the manifest's length. The order of batches is a pure function of (seed, epoch), so a
resumed run can skip the first k batches without reading their audio.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import WhisperFeatureExtractor

from voxdistill.audio import SAMPLE_RATE, audio_duration, load_audio
from voxdistill.data.degrade import add_noise, pink_noise, white_noise
from voxdistill.data.manifest import Utterance, check_duration, read_manifest
from voxdistill.errors import AudioError


# The feature extractor attribute (kept in preprocessor_config.json) of a model that encodes each
# clip at its own length: the clip is zero-padded to the next multiple of this many samples (at
# most the window) instead of to the whole window. Absent or None: padded to the window.
PAD_STEP_KEY = "pad_to_multiple_of"
# With a pad step: at least this many samples of zeros follow each clip before it is rounded up to
# the step (still at most the window). Whisper was trained on speech followed by silence up to 30 s;
# its encoder, read at a clip's bare length, loses much of what it knows (docs/measurements.md).
# Absent: 0.
TRAILING_KEY = "min_trailing_silence"


def encoder_positions_of(feature_extractor: WhisperFeatureExtractor, samples: int) -> int:
    """Encoder positions that hold ``samples`` of audio (the last partly): one per two mel frames,
    as conv2 has stride 2."""
    return math.ceil(samples / (2 * feature_extractor.hop_length))


def clip_pad_step(feature_extractor: WhisperFeatureExtractor) -> int | None:
    """The clip-length padding step of a model's feature extractor, None for a fixed window; a
    ValueError if the stored value is not a whole number of encoder positions."""
    step = getattr(feature_extractor, PAD_STEP_KEY, None)
    position = 2 * feature_extractor.hop_length  # samples per encoder position (conv2 has stride 2)
    if step is not None and (isinstance(step, bool) or not isinstance(step, int) or step <= 0 or step % position):
        raise ValueError(f"{PAD_STEP_KEY} is {step!r}: it must be a positive whole number of samples, a multiple "
                         f"of {position} (one encoder position), or absent for a fixed window")
    return step


def clip_trailing_samples(feature_extractor: WhisperFeatureExtractor) -> int:
    """The least number of zero samples after each clip of a clip-length model (0 when unset); a
    ValueError if the stored value is not a whole number of samples, or is set without a pad step."""
    trailing = getattr(feature_extractor, TRAILING_KEY, None)
    if trailing is None:
        return 0
    if isinstance(trailing, bool) or not isinstance(trailing, int) or trailing < 0:
        raise ValueError(f"{TRAILING_KEY} is {trailing!r}: it must be a whole number of samples, 0 or more")
    if trailing and clip_pad_step(feature_extractor) is None:
        raise ValueError(f"{TRAILING_KEY} is {trailing} but {PAD_STEP_KEY} is not set: trailing silence is a "
                         f"setting of a clip-length model (a fixed window already pads every clip to it)")
    return trailing


def check_clip_padding(feature_extractor: WhisperFeatureExtractor) -> None:
    """A ValueError naming the key if a model's stored clip-length padding (step, trailing silence) is invalid."""
    clip_pad_step(feature_extractor)
    clip_trailing_samples(feature_extractor)


def padded_samples(feature_extractor: WhisperFeatureExtractor, samples: int) -> int:
    """How many samples a clip of ``samples`` is padded (or cut) to before its log-mel features."""
    window, step = feature_extractor.n_samples, clip_pad_step(feature_extractor)
    if step is None:
        return window
    wanted = samples + clip_trailing_samples(feature_extractor)
    return min(max(-(-wanted // step), 1) * step, window)


def length_groups(feature_extractor: WhisperFeatureExtractor, lengths: Sequence[int]) -> list[list[int]]:
    """Indices of clips (given their lengths in samples) that are padded to the same length, in
    order of first appearance: one group for a fixed window. A batch runs group by group, so every
    clip is encoded exactly as it would be alone."""
    groups: dict[int, list[int]] = {}
    for i, n in enumerate(lengths):
        groups.setdefault(padded_samples(feature_extractor, n), []).append(i)
    return list(groups.values())


def log_mel(feature_extractor: WhisperFeatureExtractor, audios: Sequence[np.ndarray]) -> torch.Tensor:
    """(B, n_mels, frames) features exactly as the model's own feature extractor computes them
    (the teacher-consistency rule: one function makes every feature voxdistill feeds a model).
    Frames follow the window, or, for a clip-length model, the longest clip's padded length."""
    padded = max(padded_samples(feature_extractor, len(a)) for a in audios)
    return feature_extractor(list(audios), sampling_rate=SAMPLE_RATE, return_tensors="pt",
                             padding="max_length", max_length=padded).input_features


@dataclass(frozen=True)
class BatchingConfig:
    batch_size: int = 8
    bucket_size: int = 64  # utterances sorted by duration together; larger = less padding
    shuffle_buffer: int = 256  # 0 = manifest order
    seed: int = 0

    def __post_init__(self):
        if self.batch_size < 1 or self.bucket_size < self.batch_size or self.shuffle_buffer < 0:
            raise ValueError(f"need batch_size >= 1, bucket_size >= batch_size, shuffle_buffer >= 0: {self}")


@dataclass(frozen=True)
class Augmentation:
    """On-the-fly training augmentation, drawn per utterance from (seed, epoch, id)."""

    noise_probability: float = 0.5
    snr_db: tuple[float, float] = (10.0, 30.0)
    gain_db: tuple[float, float] = (-6.0, 6.0)

    def apply(self, audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if rng.random() < self.noise_probability:
            noise_fn = white_noise if rng.random() < 0.5 else pink_noise
            audio = add_noise(audio, noise_fn(len(audio), rng), float(rng.uniform(*self.snr_db)))
        audio = audio * np.float32(10 ** (rng.uniform(*self.gain_db) / 20))
        peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
        return (audio / peak * 0.99 if peak > 1.0 else audio).astype(np.float32)


def shuffled(items: Iterable[Utterance], buffer_size: int, rng: np.random.Generator) -> Iterator[Utterance]:
    """Approximate shuffle with a bounded buffer: each new item swaps out a random buffered one."""
    if buffer_size <= 1:
        yield from items
        return
    buffer: list[Utterance] = []
    for item in items:
        if len(buffer) < buffer_size:
            buffer.append(item)
            continue
        j = int(rng.integers(buffer_size))
        yield buffer[j]
        buffer[j] = item
    rng.shuffle(buffer)
    yield from buffer


def length_bucketed_batches(items: Iterable[Utterance], batch_size: int, bucket_size: int,
                            rng: np.random.Generator | None = None) -> Iterator[list[Utterance]]:
    """Read ``bucket_size`` items, sort them by duration, cut into batches (padding stays small);
    with ``rng``, the batches of a bucket come out in random order."""
    bucket: list[Utterance] = []

    def flush() -> Iterator[list[Utterance]]:
        bucket.sort(key=lambda u: u.duration)
        batches = [bucket[i : i + batch_size] for i in range(0, len(bucket), batch_size)]
        order = rng.permutation(len(batches)) if rng is not None else range(len(batches))
        for k in order:
            yield batches[k]
        bucket.clear()

    for item in items:
        bucket.append(item)
        if len(bucket) == bucket_size:
            yield from flush()
    if bucket:
        yield from flush()


@dataclass
class SpeechBatch:
    utterances: list[Utterance]  # the manifest records, extra fields included
    # (rows of the batch, their (B', n_mels, frames) features) per group of clips the model pads
    # alike (`length_groups`): one group, every row, for a fixed window. Empty when every
    # utterance is precomputed.
    feature_groups: list[tuple[list[int], torch.Tensor]]
    audios: list[np.ndarray]  # the 16 kHz signals behind the features (augmented, if augmenting)

    @property
    def input_features(self) -> torch.Tensor | None:
        """(B, n_mels, frames) features of a batch whose clips all pad alike (always, for a
        fixed-window model); None when every utterance is precomputed."""
        if not self.feature_groups:
            return None
        if len(self.feature_groups) > 1:
            raise ValueError("the clips of this batch pad to different lengths: read feature_groups")
        return self.feature_groups[0][1]

    @property
    def ids(self) -> list[str]:
        return [u.id for u in self.utterances]

    @property
    def texts(self) -> list[str | None]:
        return [u.text for u in self.utterances]


class SpeechDataset(torch.utils.data.IterableDataset):
    """Batches of log-mel features over a manifest. Under ``rank``/``world_size`` (distributed) and
    DataLoader workers, batch k goes to shard ``k % (world_size * workers)``."""

    def __init__(self, manifest: str | Path, feature_extractor: WhisperFeatureExtractor,
                 batching: BatchingConfig = BatchingConfig(), augmentation: Augmentation | None = None,
                 epoch: int = 0, start_batch: int = 0, rank: int = 0, world_size: int = 1,
                 precomputed: Callable[[Utterance], bool] | None = None):
        self.manifest = Path(manifest)
        self.feature_extractor = feature_extractor
        self.batching = batching
        self.augmentation = augmentation
        self.epoch = epoch
        self.start_batch = start_batch  # batches of this epoch already consumed (resume)
        self.rank, self.world_size = rank, world_size
        # Whether what the model needs of an utterance is already computed (a frozen encoder's
        # cached states): a batch of such utterances comes without audio or features.
        self.precomputed = precomputed

    def batch_plan(self) -> Iterator[list[Utterance]]:
        """The epoch's batches as utterance records, no audio read: a pure function of (seed, epoch)."""
        b = self.batching
        rng = np.random.default_rng([b.seed, self.epoch])
        items = read_manifest(self.manifest)
        if b.shuffle_buffer:
            items = shuffled(items, b.shuffle_buffer, rng)
        return length_bucketed_batches(items, b.batch_size, b.bucket_size, rng if b.shuffle_buffer else None)

    def __iter__(self) -> Iterator[SpeechBatch]:
        worker = torch.utils.data.get_worker_info()
        workers, worker_id = (worker.num_workers, worker.id) if worker else (1, 0)
        shards, shard = self.world_size * workers, self.rank * workers + worker_id
        for k, batch in enumerate(self.batch_plan()):
            if k < self.start_batch or k % shards != shard:
                continue
            if self.precomputed is not None and all(self.precomputed(u) for u in batch):
                yield SpeechBatch(utterances=batch, feature_groups=[], audios=[])
                continue
            audios = [self._load(u) for u in batch]
            if self.augmentation is not None:
                audios = [self.augmentation.apply(a, self._utterance_rng(u)) for a, u in zip(audios, batch)]
            groups = length_groups(self.feature_extractor, [len(a) for a in audios])
            yield SpeechBatch(utterances=batch, audios=audios, feature_groups=[
                (rows, log_mel(self.feature_extractor, [audios[i] for i in rows])) for rows in groups])

    def _load(self, utt: Utterance) -> np.ndarray:
        """The utterance's audio; it must fit the model's window, or its transcript would be cut, and
        last as long as the manifest says (a trainer may count frames from the duration)."""
        path = utt.audio_path(self.manifest.parent)
        window = self.feature_extractor.n_samples / SAMPLE_RATE
        duration = audio_duration(path)  # from the header: a long file is refused before it is read
        if duration > window:
            raise AudioError(str(path), f"{duration:.1f} s is longer than the model's {window:g} s input "
                                        f"window; leave it out of the training manifest, or give the student "
                                        f"a longer window")
        audio = load_audio(path, max_seconds=None)
        check_duration(self.manifest, utt, len(audio) / SAMPLE_RATE)
        return audio

    def _utterance_rng(self, utt: Utterance) -> np.random.Generator:
        return np.random.default_rng([self.batching.seed, self.epoch, zlib.crc32(utt.id.encode())])
