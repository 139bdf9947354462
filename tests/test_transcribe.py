"""The greedy decoding loop gives exactly the tokens of transformers' generate()."""

from __future__ import annotations

import pytest

from tests.conftest import SPEECH
from voxdistill.audio import load_audio
from voxdistill.decoding import DecodingOptions, decode_tokens, encode, greedy_decode, log_mel, prompt_tokens
from voxdistill.models.loading import load_whisper


def _generate(whisper, encoder_outputs, max_new_tokens: int) -> list[list[int]]:
    out = whisper.model.generate(encoder_outputs=encoder_outputs, num_beams=1, do_sample=False,
                                 max_new_tokens=max_new_tokens, return_timestamps=False,
                                 force_unique_generate_call=True)
    eot = whisper.model.generation_config.eos_token_id
    start = whisper.model.generation_config.decoder_start_token_id
    return [[t for t in row if t != eot and t < start] for row in out.tolist()]


def _check_same_tokens(whisper, clips, max_new_tokens: int) -> list[list[int]]:
    encoder_outputs = encode(whisper, log_mel(whisper, clips))
    expected = _generate(whisper, encoder_outputs, max_new_tokens)
    options = DecodingOptions(max_new_tokens=max_new_tokens, max_tokens_per_second=None)
    assert decode_tokens(whisper, encoder_outputs, options, 30.0) == expected  # the batch
    for i, clip in enumerate(clips):  # and each clip alone
        alone = encode(whisper, log_mel(whisper, [clip]))
        assert decode_tokens(whisper, alone, options, 30.0) == [expected[i]]
    return expected


def test_greedy_loop_equals_generate_on_a_random_whisper(tiny_random_whisper, speech_dir):
    whisper = load_whisper(str(tiny_random_whisper))
    clips = [load_audio(speech_dir / f"{name}.wav") for name in SPEECH]
    tokens = _check_same_tokens(whisper, clips, max_new_tokens=25)
    # A random model rarely ends: the budget stops it, and the suppressed tokens never appear.
    assert all(len(row) > 0 for row in tokens)
    suppressed = set(whisper.model.generation_config.suppress_tokens)
    assert not suppressed & {t for row in tokens for t in row}


def test_greedy_loop_with_no_budget_returns_nothing(tiny_random_whisper, speech_dir):
    whisper = load_whisper(str(tiny_random_whisper))
    states = encode(whisper, log_mel(whisper, [load_audio(speech_dir / "fox.wav")])).last_hidden_state
    assert greedy_decode(whisper, states, prompt_tokens(whisper), 0) == [[]]


@pytest.mark.integration
def test_greedy_loop_equals_generate_on_the_bundled_teacher(speech_dir):
    """A trained model ends its transcripts, at different steps within a batch."""
    whisper = load_whisper("bundled:whisper-tiny.en")
    clips = [load_audio(speech_dir / f"{name}.wav") for name in SPEECH]
    tokens = _check_same_tokens(whisper, clips, max_new_tokens=224)
    texts = [whisper.processor.tokenizer.decode(row).lower() for row in tokens]
    assert "lazy" in texts[0] and "report" in texts[1]
    assert len({len(row) for row in tokens}) > 1  # the clips ended at different steps


def test_a_compiled_decoder_decodes_the_same_tokens(tiny_random_whisper, speech_dir):
    """--compile-decoder: greedy decoding through torch.compile gives the eager tokens, batch and alone
    (clips of different lengths share one dynamic graph), and leaves the fingerprint alone."""
    from voxdistill.runtime import generate_tokens
    from voxdistill.families import load_recogniser

    clips = [load_audio(speech_dir / f"{name}.wav") for name in ("fox", "report")]
    options = DecodingOptions(batch_size=2, max_new_tokens=6, max_tokens_per_second=None)
    eager = load_recogniser(str(tiny_random_whisper))
    compiled = load_recogniser(str(tiny_random_whisper))
    compiled.whisper.compile_decoder()
    expected = generate_tokens(eager, clips, options)
    assert generate_tokens(compiled, clips, options) == expected
    assert [generate_tokens(compiled, [c], options)[0] for c in clips] == expected
    assert compiled.fingerprint == eager.fingerprint


def test_compile_decoder_is_for_the_torch_runtime():
    from voxdistill.evaluation.evaluate import EvalSettings
    from voxdistill.runtime import Runtime, RuntimeConfigError

    with pytest.raises(RuntimeConfigError, match="--compile-decoder compiles PyTorch's"):
        EvalSettings(runtime=Runtime("ct2", "int8"), compile_decoder=True)
    assert EvalSettings(compile_decoder=True).compile_decoder
