"""Speech synthesis with the real engines: every installed voice, rate, pitch, ids and errors."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voxdistill.audio import SAMPLE_RATE, load_audio, resample
from voxdistill.data.tts import (
    ENGINE_PACKAGES,
    ENGINES,
    SynthesisError,
    Voice,
    engine_available,
    espeak_ng,
    missing_engines,
    synthesize,
)

SENTENCE = "Please send the weekly report to the team today."

VOICES = [
    Voice("espeak-ng", "en-us"),
    Voice("espeak-ng", "en-us+f3"),
    Voice("espeak-ng", "en-gb-scotland"),
    Voice("espeak-ng", "en-gb-x-rp+f4"),
    *(Voice("flite", name) for name in ("kal", "kal16", "awb", "rms", "slt")),
    *(Voice("festival", name) for name in ("cmu_us_slt_arctic_hts", "kal_diphone", "ked_diphone")),
    Voice("piper", "en_US-joe-medium"),
]


def voice_id(param: object) -> str | None:
    """Test ids from voices; None lets pytest name the other parameters."""
    return param.id if isinstance(param, Voice) else None


def median_f0(audio: np.ndarray) -> float:
    """Median pitch in Hz of the loud frames, from the autocorrelation peak in 60..400 Hz."""
    frame, hop = int(0.04 * SAMPLE_RATE), int(0.01 * SAMPLE_RATE)
    shortest, longest = SAMPLE_RATE // 400, SAMPLE_RATE // 60
    pitches = []
    for start in range(0, len(audio) - frame, hop):
        x = audio[start : start + frame] - audio[start : start + frame].mean()
        if np.sqrt(np.mean(x**2)) < 0.05 * np.abs(audio).max():
            continue  # silence and weak consonants have no clear period
        corr = np.correlate(x, x, "full")[frame - 1 :]
        lag = shortest + int(np.argmax(corr[shortest:longest]))
        if corr[lag] > 0.5 * corr[0]:
            pitches.append(SAMPLE_RATE / lag)
    return float(np.median(pitches))


@pytest.mark.parametrize("voice", VOICES, ids=voice_id)
def test_every_voice_speaks_the_same_samples_every_time(voice: Voice) -> None:
    audio = synthesize(voice, SENTENCE)
    assert audio.dtype == np.float32
    assert audio.ndim == 1
    assert 0.5 * SAMPLE_RATE < len(audio) < 10 * SAMPLE_RATE
    assert np.all(np.isfinite(audio))
    assert np.sqrt(np.mean(audio**2)) > 1e-3
    np.testing.assert_array_equal(synthesize(voice, SENTENCE), audio)


@pytest.mark.parametrize("voice", [
    Voice("espeak-ng", "en-us"),
    Voice("flite", "kal"),  # a voice whose own duration_stretch is 1.1
    Voice("flite", "slt"),
    Voice("festival", "kal_diphone"),
    Voice("festival", "cmu_us_slt_arctic_hts"),  # HTS: its speed is set apart from Duration_Stretch
    Voice("piper", "en_US-joe-medium"),
], ids=voice_id)
def test_faster_rate_gives_shorter_audio(voice: Voice) -> None:
    normal = len(synthesize(voice, SENTENCE))
    fast = len(synthesize(replace(voice, rate=1.5), SENTENCE))
    assert 0.6 < fast / normal < 0.75  # about 1 / 1.5; pauses and engine rounding keep it inexact


@pytest.mark.parametrize("voice, plain_command", [
    (Voice("espeak-ng", "en-us+f3"), ["espeak-ng", "-v", "en-us+f3", "-w", "{wav}", "-f", "{text}"]),
    (Voice("flite", "kal"), ["flite", "-voice", "kal", "-f", "{text}", "-o", "{wav}"]),
    (Voice("festival", "kal_diphone"), ["text2wave", "-eval", "(voice_kal_diphone)", "-o", "{wav}", "{text}"]),
    (Voice("festival", "cmu_us_slt_arctic_hts"),
     ["text2wave", "-eval", "(voice_cmu_us_slt_arctic_hts)", "-o", "{wav}", "{text}"]),
], ids=voice_id)
def test_rate_one_and_pitch_zero_are_the_engine_defaults(voice: Voice, plain_command: list[str],
                                                         tmp_path: Path) -> None:
    text, wav = tmp_path / "text.txt", tmp_path / "plain.wav"
    text.write_text(SENTENCE, encoding="utf-8")
    subprocess.run([arg.format(text=text, wav=wav) for arg in plain_command], check=True, capture_output=True)
    plain, rate = sf.read(wav, dtype="float32")
    np.testing.assert_array_equal(synthesize(voice, SENTENCE), resample(plain, rate))


@pytest.mark.parametrize("voice", [Voice("espeak-ng", "en-us"), Voice("flite", "slt"), Voice("flite", "kal16")],
                         ids=voice_id)
def test_pitch_moves_the_voice_up_and_down(voice: Voice) -> None:
    low, normal, high = (median_f0(synthesize(replace(voice, pitch=p), SENTENCE)) for p in (-4.0, 0.0, 4.0))
    assert low < normal < high
    # flite scales its F0 targets exactly; espeak-ng shifts only the base of its contour, so less.
    assert 2.0 < 12 * np.log2(high / normal) < 5.0


def test_text_is_never_parsed_as_options_or_code() -> None:
    # A leading dash (an option to espeak-ng/flite), quotes and parentheses (Scheme to festival).
    text = '-v en-gb said "hello (twice)"; then left.'
    for voice in (Voice("espeak-ng", "en-us"), Voice("flite", "slt"), Voice("festival", "kal_diphone")):
        assert 0.5 * SAMPLE_RATE < len(synthesize(voice, text)) < 10 * SAMPLE_RATE


def test_espeak_ng_file_wrapper(tmp_path: Path) -> None:
    path = espeak_ng(SENTENCE, tmp_path / "sub" / "report.wav", voice="en-gb", rate=160, pitch=60)
    assert sf.info(path).samplerate == SAMPLE_RATE
    expected = synthesize(Voice("espeak-ng", "en-gb", rate=160 / 175, pitch=2.4), SENTENCE)
    np.testing.assert_array_equal(load_audio(path), expected)


@pytest.mark.parametrize("kwargs, message", [
    (dict(engine="say", name="alex"), "unknown speech engine 'say'"),
    (dict(engine="espeak-ng", name="en us"), "must be letters, digits"),
    (dict(engine="festival", name="kal_diphone) (system"), "must be letters, digits"),
    (dict(engine="espeak-ng", name="en-us", rate=0.4), "rate must be within 0.5..2.0"),
    (dict(engine="espeak-ng", name="en-us", rate=2.1), "rate must be within 0.5..2.0"),
    (dict(engine="espeak-ng", name="en-us", rate=float("nan")), "rate must be within"),
    (dict(engine="espeak-ng", name="en-us", pitch=12.0), "within -12..+11.76 semitones"),
    (dict(engine="flite", name="slt", pitch=-12.5), "within -12..+12 semitones"),
    (dict(engine="festival", name="kal_diphone", pitch=1.0), "has no pitch control"),
    (dict(engine="piper", name="en_US-joe-medium", pitch=-1.0), "has no pitch control"),
    (dict(engine="flite", name="rms", pitch=2.0), "has no pitch control"),
    (dict(engine="flite", name="awb_time"), "only speaks clock times"),
])
def test_voice_validation(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("+", r"\+")):
        Voice(**kwargs)


def test_pitch_control() -> None:
    assert Voice("espeak-ng", "en-us").has_pitch_control
    assert Voice("flite", "slt").has_pitch_control
    assert not Voice("flite", "rms").has_pitch_control
    assert not Voice("festival", "kal_diphone").has_pitch_control
    assert not Voice("piper", "en_US-joe-medium").has_pitch_control


def test_voice_id() -> None:
    assert Voice("espeak-ng", "en-us+f3", rate=1.1, pitch=2).id == "espeak-ng_en-us+f3_r1.10_p+2"
    assert Voice("festival", "cmu_us_slt_arctic_hts").id == "festival_cmu_us_slt_arctic_hts_r1.00_p+0"
    assert Voice("flite", "slt", pitch=-1.5).id == "flite_slt_r1.00_p-1.5"
    # Equal voices, equal ids.
    assert Voice("flite", "slt", rate=1, pitch=-0.0).id == Voice("flite", "slt", rate=1.0, pitch=0.0).id
    voices = [*VOICES, Voice("espeak-ng", "en-us", rate=1.1), Voice("espeak-ng", "en-us", rate=1.101),
              Voice("espeak-ng", "en-us", pitch=2), Voice("espeak-ng", "en-us", pitch=2.0000001)]
    assert len({v.id for v in voices}) == len(voices)
    assert Voice("espeak-ng", "en-us", rate=1.101).id == "espeak-ng_en-us_r1.101_p+0"


@pytest.mark.parametrize("voice, message", [
    (Voice("espeak-ng", "xx-nosuchvoice"), "espeak-ng failed for voice 'xx-nosuchvoice'"),
    (Voice("flite", "nosuchvoice"), "flite has no voice 'nosuchvoice'; installed: kal"),
    (Voice("festival", "nosuchvoice"), "unbound variable : voice_nosuchvoice"),
    (Voice("piper", "en_US-nosuchvoice-medium"), "no piper voice 'en_US-nosuchvoice-medium'"),
], ids=voice_id)
def test_missing_voice(voice: Voice, message: str) -> None:
    with pytest.raises(SynthesisError, match=message):
        synthesize(voice, SENTENCE)


def test_engines_are_installed() -> None:
    assert [p.engine for p in ENGINE_PACKAGES] == list(ENGINES) == ["espeak-ng", "flite", "festival", "piper"]
    assert missing_engines() == []
    with pytest.raises(ValueError, match="unknown speech engine 'say'"):
        engine_available("say")


def test_missing_programs_are_named_with_their_package(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no engine program can be found
    assert missing_engines() == ["espeak-ng", "flite", "festival"]
    with pytest.raises(SynthesisError, match="espeak-ng comes from the Debian package.s. espeak-ng; run scripts/setup.sh"):
        synthesize(Voice("espeak-ng", "en-us"), SENTENCE)
    with pytest.raises(SynthesisError, match="text2wave is not installed; festival comes from .* festvox-us-slt-hts"):
        synthesize(Voice("festival", "kal_diphone"), SENTENCE)


def test_no_sound_is_an_error() -> None:
    with pytest.raises(SynthesisError, match="produced no sound"):
        synthesize(Voice("piper", "en_US-joe-medium"), "   ")
