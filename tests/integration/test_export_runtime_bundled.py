"""The bundled tiny.en exported to CTranslate2 and run in voxdistill's ct2 runtime and in faster-whisper,
on real (synthesised) speech."""

from __future__ import annotations

import pytest

from tests.conftest import SPEECH
from voxdistill.audio import load_audio
from voxdistill.decoding import DecodingOptions
from voxdistill.export.exporter import export_model
from voxdistill.families import load_recogniser
from voxdistill.runtime import Runtime, generate_tokens
from voxdistill.scoring.metrics import word_error_rate
from voxdistill.transcribe import transcribe_audio

pytestmark = pytest.mark.integration

TEACHER = "bundled:whisper-tiny.en"
WER_BOUND = 0.35  # as for tiny.en in PyTorch (test_bundled_teachers): room for an espeak-ng build, not a broken model
REFERENCES = [text for _, text in SPEECH.values()]


@pytest.fixture(scope="module")
def clips(speech_dir):
    return [load_audio(speech_dir / f"{name}.wav") for name in SPEECH]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return export_model(TEACHER, "ct2", tmp_path_factory.mktemp("tiny-en") / "ct2", "float32")


def test_float32_export_decodes_the_torch_tokens(exported, clips):
    options = DecodingOptions(batch_size=3)
    torch_tokens = generate_tokens(load_recogniser(TEACHER), clips, options)
    assert all(len(t) > 5 for t in torch_tokens)
    assert generate_tokens(load_recogniser(str(exported), Runtime("ct2", "float32"), threads=1), clips,
                           options) == torch_tokens


def test_int8_runs_as_another_teacher(clips):
    int8 = load_recogniser(TEACHER, Runtime("ct2", "int8"), threads=1)  # exported into the cache at int8
    assert word_error_rate(REFERENCES, transcribe_audio(int8, clips, DecodingOptions(batch_size=3))) <= WER_BOUND
    reference = load_recogniser(TEACHER).fingerprint
    assert int8.fingerprint.digest != reference.digest and int8.fingerprint.model_digest == reference.digest


def test_faster_whisper_transcribes_the_export(exported, speech_dir):
    from faster_whisper import WhisperModel

    model = WhisperModel(str(exported), device="cpu", compute_type="int8", cpu_threads=1)
    texts = []
    for name in SPEECH:
        segments, _ = model.transcribe(str(speech_dir / f"{name}.wav"), language="en", beam_size=1,
                                       temperature=0.0, without_timestamps=True, condition_on_previous_text=False)
        texts.append(" ".join(s.text.strip() for s in segments))
    # Not compared word for word with voxdistill: faster-whisper pads a clip's features with zeros
    # rather than padding its audio, which changes some words (see docs/runtimes-and-export.md, faster-whisper).
    assert word_error_rate(REFERENCES, texts) <= WER_BOUND, list(zip(REFERENCES, texts))
