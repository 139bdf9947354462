"""``voxdistill demo``: the project's main job end to end on this machine.

For now: speak a few sentences with espeak-ng, transcribe them with both bundled teachers, and print
word error rate and speed side by side.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from voxdistill.audio import SAMPLE_RATE, load_audio
from voxdistill.data.tts import espeak_ng
from voxdistill.evaluation.metrics import word_error_rate
from voxdistill.models.loading import BUNDLED_PREFIX, load_whisper
from voxdistill.transcribe import DecodingOptions, transcribe_audio

# (voice, sentence): the project's own sentences, no digits so that normalisation is not at stake.
SAMPLE_UTTERANCES = [
    ("en-us", "The small model learns to copy the large one, then learns to stand on its own."),
    ("en-gb", "Please send the weekly report to the team before the meeting on Friday."),
    ("en-us+f3", "A quiet voice in a noisy room is the hardest thing for a machine to hear."),
]


@dataclass(frozen=True)
class DemoRow:
    model: str
    wer: float
    seconds_per_clip: float
    real_time_factor: float
    transcripts: list[str]


def synthesize_samples(folder: Path) -> list[tuple[Path, str]]:
    samples = []
    for i, (voice, text) in enumerate(SAMPLE_UTTERANCES):
        path = folder / f"sample-{i}-{voice.replace('+', '_')}.wav"
        if not path.is_file():
            espeak_ng(text, path, voice=voice)
        samples.append((path, text))
    return samples


def run_demo(out_dir: Path, models: list[str] | None = None) -> list[DemoRow]:
    models = models or [f"{BUNDLED_PREFIX}whisper-tiny.en", f"{BUNDLED_PREFIX}whisper-base"]
    samples = synthesize_samples(out_dir / "audio")
    audios = [load_audio(path) for path, _ in samples]
    references = [text for _, text in samples]
    audio_seconds = sum(len(a) for a in audios) / SAMPLE_RATE
    rows = []
    for model in models:
        whisper = load_whisper(model)
        transcribe_audio(whisper, audios[:1], DecodingOptions(batch_size=1))  # warm-up
        start = time.perf_counter()
        texts = transcribe_audio(whisper, audios, DecodingOptions(batch_size=1))
        elapsed = time.perf_counter() - start
        rows.append(DemoRow(model, word_error_rate(references, texts), elapsed / len(audios),
                            elapsed / audio_seconds, texts))
    return rows
