"""Bundled teachers on this machine: conversion time, fingerprint stability across processes, and
transcription speed (voxdistill's PyTorch model vs the CTranslate2 engine on the same weights,
timed in one process run).

    .venv/bin/python benchmarks/bundled_teachers.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ctranslate2
import torch

from voxdistill.audio import SAMPLE_RATE, load_audio
from voxdistill.console import quiet_transformers
from voxdistill.data.tts import espeak_ng
from voxdistill.decoding import DecodingOptions, log_mel, prompt_tokens
from voxdistill.models.loading import BUNDLED, bundled_files, load_whisper, resolve_model_folder
from voxdistill.transcribe import transcribe_audio

# (voice, sentence): the project's own sentences, no digits so that normalisation is not at stake.
SAMPLE_UTTERANCES = [
    ("en-us", "The small model learns to copy the large one, then learns to stand on its own."),
    ("en-gb", "Please send the weekly report to the team before the meeting on Friday."),
    ("en-us+f3", "A quiet voice in a noisy room is the hardest thing for a machine to hear."),
]


def fingerprint_in_fresh_process(model: str) -> str:
    out = subprocess.run([sys.executable, "-m", "voxdistill.cli", "model", "info", model, "--json"],
                         capture_output=True, text=True, check=True, env=os.environ.copy())
    return json.loads(out.stdout)["fingerprint"]["digest"]


def ct2_seconds_per_clip(name: str, whisper, clips, work: Path) -> float:
    parts, side_dir = bundled_files(name)
    folder = work / f"ct2-{name}"
    folder.mkdir()
    (folder / "model.bin").write_bytes(b"".join(p.read_bytes() for p in parts))
    for f in ("config.json", "tokenizer.json", "vocabulary.txt"):
        (folder / f).symlink_to(side_dir / f)
    engine = ctranslate2.models.Whisper(str(folder), device="cpu", compute_type="float32",
                                        intra_threads=torch.get_num_threads())
    prompt = [prompt_tokens(whisper)]
    features = [ctranslate2.StorageView.from_array(log_mel(whisper, [c]).numpy()) for c in clips]
    engine.generate(features[0], prompt, beam_size=1)  # warm-up
    start = time.perf_counter()
    for f in features:
        engine.generate(f, prompt, beam_size=1)
    return (time.perf_counter() - start) / len(clips)


def main() -> None:
    quiet_transformers()
    work = Path(tempfile.mkdtemp(prefix="voxdistill-bench-"))
    os.environ["VOXDISTILL_CACHE"] = str(work / "cache")  # a fresh cache: conversion is timed
    clips = [load_audio(espeak_ng(text, work / f"{i}.wav", voice=voice))
             for i, (voice, text) in enumerate(SAMPLE_UTTERANCES)]
    audio_seconds = sum(len(c) for c in clips) / SAMPLE_RATE
    print(f"threads {torch.get_num_threads()}, {len(clips)} clips, {audio_seconds:.1f} s of audio, greedy, batch 1")
    header = f"{'model':24} {'params':>7} {'convert s':>9} {'load s':>6} {'s/clip':>7} {'RTF':>6} {'ct2 s/clip':>10} {'fingerprint (3 processes)':>28}"
    print(header)
    for name in BUNDLED:
        model = f"bundled:{name}"
        start = time.perf_counter()
        resolve_model_folder(model)
        convert_s = time.perf_counter() - start
        start = time.perf_counter()
        whisper = load_whisper(model)
        load_s = time.perf_counter() - start
        options = DecodingOptions(batch_size=1)
        transcribe_audio(whisper, clips[:1], options)  # warm-up
        start = time.perf_counter()
        transcribe_audio(whisper, clips, options)
        per_clip = (time.perf_counter() - start) / len(clips)
        ct2_per_clip = ct2_seconds_per_clip(name, whisper, clips, work)
        digests = {whisper.fingerprint.digest, fingerprint_in_fresh_process(model),
                   fingerprint_in_fresh_process(model)}
        stable = "stable " + digests.pop() if len(digests) == 1 else f"UNSTABLE {sorted(digests)}"
        params = sum(p.numel() for p in whisper.model.parameters()) / 1e6
        print(f"{model:24} {params:6.1f}M {convert_s:9.2f} {load_s:6.2f} {per_clip:7.2f} "
              f"{per_clip * len(clips) / audio_seconds:6.3f} {ct2_per_clip:10.2f} {stable:>28}")


if __name__ == "__main__":
    main()
