"""Bundled teachers on this machine: conversion time, fingerprint stability across processes, and
transcription speed (voxdistill's PyTorch model vs the CTranslate2 engine on the same weights,
timed in one process run).

    .venv/bin/python benchmarks/bundled_teachers.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import ctranslate2
import torch

from voxdistill.audio import SAMPLE_RATE, load_audio
from voxdistill.console import quiet_transformers
from voxdistill.data.tts import espeak_ng
from voxdistill.decoding import DecodingOptions, log_mel, prompt_tokens
from voxdistill.models.loading import BUNDLED, bundled_files, load_whisper, resolve_model_folder
from voxdistill.transcribe import transcribe_audio

from _common import Column, Stopwatch, Table, millions, run

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
    with Stopwatch() as watch:
        for f in features:
            engine.generate(f, prompt, beam_size=1)
    return watch.seconds / len(clips)


def main() -> None:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    quiet_transformers()
    work = Path(tempfile.mkdtemp(prefix="voxdistill-bench-"))
    os.environ["VOXDISTILL_CACHE"] = str(work / "cache")  # a fresh cache: conversion is timed
    clips = [load_audio(espeak_ng(text, work / f"{i}.wav", voice=voice))
             for i, (voice, text) in enumerate(SAMPLE_UTTERANCES)]
    audio_seconds = sum(len(c) for c in clips) / SAMPLE_RATE
    print(f"threads {torch.get_num_threads()}, {len(clips)} clips, {audio_seconds:.1f} s of audio, greedy, batch 1")
    table = Table(Column("model", width=24, left=True), Column("params", millions, 7), Column("convert s", ".2f"),
                  Column("load s", ".2f"), Column("s/clip", ".2f", 7), Column("RTF", ".3f", 6),
                  Column("ct2 s/clip", ".2f"), Column("fingerprint (3 processes)", width=28))
    print(table.header())
    for name in BUNDLED:
        model = f"bundled:{name}"
        with Stopwatch() as converting:
            resolve_model_folder(model)
        with Stopwatch() as loading:
            whisper = load_whisper(model)
        options = DecodingOptions(batch_size=1)
        transcribe_audio(whisper, clips[:1], options)  # warm-up
        with Stopwatch() as transcribing:
            transcribe_audio(whisper, clips, options)
        per_clip = transcribing.seconds / len(clips)
        ct2_per_clip = ct2_seconds_per_clip(name, whisper, clips, work)
        digests = {whisper.fingerprint.digest, fingerprint_in_fresh_process(model),
                   fingerprint_in_fresh_process(model)}
        stable = "stable " + digests.pop() if len(digests) == 1 else f"UNSTABLE {sorted(digests)}"
        params = sum(p.numel() for p in whisper.model.parameters())
        print(table.row(model, params, converting.seconds, loading.seconds, per_clip,
                        transcribing.seconds / audio_seconds, ct2_per_clip, stable))


if __name__ == "__main__":
    run(main)
