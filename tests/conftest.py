"""Shared fixtures: an isolated cache, real speech made with espeak-ng, tiny random Whispers."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# Every test process (and the subprocesses tests start) uses one fresh cache, never the user's.
os.environ.setdefault("VOXDISTILL_CACHE", str(Path(os.environ.get("PYTEST_CACHE_ROOT", "/tmp")) /
                                              f"voxdistill-test-cache-{os.getpid()}"))
os.environ["HF_HUB_OFFLINE"] = "1"

from voxdistill.data.tts import espeak_ng  # noqa: E402
from voxdistill.models.debug import make_tiny_whisper  # noqa: E402  (tests import it from here)
from voxdistill.models.loading import resolve_model_folder  # noqa: E402

# Two processes through accelerate. On a machine without GPUs, `--multi_gpu` still starts the
# processes (torchrun) and they train on the CPU over gloo; `--cpu` would start only one.
ACCELERATE_2_PROCESSES = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                          "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                          "-m", "voxdistill.cli"]

# Sentences the tests speak (no digits, so that a plain normaliser suffices).
SPEECH = {
    "fox": ("en-us", "The quick brown fox jumps over the lazy dog."),
    "report": ("en-gb", "Please send the weekly report to the team before the meeting."),
    "weather": ("en-us", "It will be cold and windy tomorrow morning, so bring a warm coat."),
}


@pytest.fixture(scope="session")
def speech_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("speech")
    for name, (voice, text) in SPEECH.items():
        espeak_ng(text, folder / f"{name}.wav", voice=voice)
    return folder


@pytest.fixture(scope="session")
def tiny_en_folder() -> Path:
    """The bundled tiny.en teacher converted into a Hugging Face folder (once per session)."""
    return resolve_model_folder("bundled:whisper-tiny.en")


@pytest.fixture(scope="session")
def tiny_random_whisper(tmp_path_factory, tiny_en_folder) -> Path:
    return make_tiny_whisper(tmp_path_factory.mktemp("tiny-random") / "model", tiny_en_folder)


def decode_each_window_once(patch: pytest.MonkeyPatch) -> None:
    """The pipeline's evaluations decode each window once, without Whisper's temperature fallback.
    A random-weight Whisper doubts every window, so the fallback would decode each five more times
    to the token budget: most of a pipeline test's time, spent on what `test_speech_checks` tests.
    The no-speech rule and VAD still run."""
    from functools import partial

    from voxdistill import pipeline
    from voxdistill.decoding import DecodingOptions, SpeechChecks
    from voxdistill.evaluation.evaluate import EvalSettings

    patch.setattr(pipeline, "EvalSettings",
                  partial(EvalSettings, decoding=DecodingOptions(checks=SpeechChecks(temperatures=()))))
