"""load_audio and audio_duration on real files written with soundfile."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voxdistill.audio import (
    CHUNK_LENGTH,
    HOP_LENGTH,
    N_FRAMES,
    N_SAMPLES,
    SAMPLE_RATE,
    AudioConversionWarning,
    audio_duration,
    exact_div,
    load_audio,
)
from voxdistill.errors import AudioError


def tone(seconds: float, rate: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    """A 440 Hz tone plus a little seeded noise, (frames, channels) float32; channels differ in noise."""
    rng = np.random.default_rng(seed)
    n = round(seconds * rate)
    sine = 0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / rate)
    noise = 0.01 * rng.standard_normal((n, channels))
    return (sine[:, None] + noise).astype(np.float32)


def write(path: Path, audio: np.ndarray, rate: int, subtype: str = "FLOAT") -> Path:
    # FLOAT keeps values exact on round trip, so tests can compare against what they wrote.
    sf.write(path, audio, rate, subtype=subtype)
    return path


def expect_audio_error(path: Path, reason: str, **kwargs) -> AudioError:
    with pytest.raises(AudioError) as info:
        load_audio(path, **kwargs)
    assert info.value.path == str(path)
    assert str(path) in str(info.value)
    assert reason in str(info.value)
    return info.value


def test_constants_follow_whisper() -> None:
    assert N_SAMPLES == 480_000
    assert N_FRAMES == 3000 == N_SAMPLES // HOP_LENGTH


def test_exact_div() -> None:
    assert exact_div(480_000, 160) == 3000
    with pytest.raises(ValueError, match="10 is not divisible by 3"):
        exact_div(10, 3)


def test_clean_16k_mono_loads_unchanged_and_silently(tmp_path: Path) -> None:
    written = tone(1.0, SAMPLE_RATE)
    path = write(tmp_path / "clean.wav", written, SAMPLE_RATE)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        audio = load_audio(path)
    assert audio.dtype == np.float32
    assert audio.shape == (SAMPLE_RATE,)
    np.testing.assert_array_equal(audio, written[:, 0])


def test_missing_file(tmp_path: Path) -> None:
    expect_audio_error(tmp_path / "nope.wav", "file not found")


def test_directory(tmp_path: Path) -> None:
    folder = tmp_path / "clips.wav"
    folder.mkdir()
    expect_audio_error(folder, "is a directory")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.touch()
    expect_audio_error(path, "file is empty (0 bytes)")


def test_corrupt_bytes(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.wav"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    err = expect_audio_error(path, "cannot decode: ")
    assert "Format not recognised" in err.reason
    assert "convert it to WAV/FLAC 16 kHz mono" in err.reason


def test_corrupt_body_behind_valid_header(tmp_path: Path) -> None:
    # The header parses, so only the sample read can notice the damage.
    path = write(tmp_path / "damaged.flac", tone(1.0, SAMPLE_RATE), SAMPLE_RATE, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    data[200:-100] = np.random.default_rng(0).bytes(len(data) - 300)
    path.write_bytes(data)
    assert sf.info(path).frames == SAMPLE_RATE
    expect_audio_error(path, "cannot decode: ")


def test_zero_frames(tmp_path: Path) -> None:
    path = write(tmp_path / "silent.wav", np.zeros((0, 1), np.float32), SAMPLE_RATE)
    assert path.stat().st_size > 0
    expect_audio_error(path, "contains no samples")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples(tmp_path: Path, bad: float) -> None:
    audio = tone(1.0, SAMPLE_RATE)
    audio[[10, 500, 9000], 0] = bad
    path = write(tmp_path / "nonfinite.wav", audio, SAMPLE_RATE)
    expect_audio_error(path, "contains 3 non-finite (NaN/inf) samples")


def test_peaks_above_one_are_kept(tmp_path: Path) -> None:
    audio = tone(1.0, SAMPLE_RATE)
    audio[100, 0] = 1.5
    path = write(tmp_path / "loud.wav", audio, SAMPLE_RATE)
    assert load_audio(path)[100] == pytest.approx(1.5)


def test_unusual_sample_rate(tmp_path: Path) -> None:
    path = write(tmp_path / "slow.wav", tone(1.0, 2000), 2000)
    expect_audio_error(path, "unusual sample rate 2000 Hz")


def test_stereo_is_downmixed_by_averaging(tmp_path: Path) -> None:
    written = tone(1.0, SAMPLE_RATE, channels=2)
    path = write(tmp_path / "stereo.wav", written, SAMPLE_RATE)
    with pytest.warns(AudioConversionWarning) as record:
        audio = load_audio(path)
    assert [str(w.message) for w in record] == [f"{path}: 2 channels downmixed to mono"]
    assert audio.shape == (SAMPLE_RATE,)
    np.testing.assert_allclose(audio, written.mean(axis=1), atol=1e-7)
    assert not np.allclose(audio, written[:, 0], atol=1e-4)  # both channels really count


def test_44k_mono_is_resampled(tmp_path: Path) -> None:
    seconds = 1.37
    path = write(tmp_path / "cd.wav", tone(seconds, 44100), 44100)
    with pytest.warns(AudioConversionWarning) as record:
        audio = load_audio(path)
    assert [str(w.message) for w in record] == [f"{path}: resampled 44100 Hz -> 16000 Hz"]
    assert audio.dtype == np.float32
    assert abs(len(audio) - seconds * SAMPLE_RATE) <= 1
    # The tone must still be at 440 Hz: a wrong up/down ratio would move it.
    spectrum = np.abs(np.fft.rfft(audio))
    peak_hz = np.argmax(spectrum) * SAMPLE_RATE / len(audio)
    assert abs(peak_hz - 440) < 2


def test_8k_is_upsampled(tmp_path: Path) -> None:
    path = write(tmp_path / "phone.wav", tone(1.0, 8000), 8000)
    with pytest.warns(AudioConversionWarning, match="resampled 8000 Hz -> 16000 Hz") as record:
        audio = load_audio(path)
    assert str(path) in str(record[0].message)
    assert len(audio) == SAMPLE_RATE


def test_stereo_44k_warns_about_both_conversions(tmp_path: Path) -> None:
    path = write(tmp_path / "both.wav", tone(0.5, 44100, channels=2), 44100)
    with pytest.warns(AudioConversionWarning) as record:
        audio = load_audio(path)
    assert [str(w.message) for w in record] == [
        f"{path}: 2 channels downmixed to mono",
        f"{path}: resampled 44100 Hz -> 16000 Hz",
    ]
    assert audio.shape == (8000,)


def test_long_audio_is_refused_by_default(tmp_path: Path) -> None:
    path = write(tmp_path / "lecture.wav", tone(CHUNK_LENGTH + 1, SAMPLE_RATE), SAMPLE_RATE, "PCM_16")
    err = expect_audio_error(path, "31.0 s, longer than the 30 s limit")
    assert 'long_audio="split"' in err.reason
    assert "--long-audio split" in err.reason


def test_long_audio_is_split_when_asked(tmp_path: Path) -> None:
    written = tone(3.0, SAMPLE_RATE)
    path = write(tmp_path / "lecture.wav", written, SAMPLE_RATE)
    with pytest.warns(AudioConversionWarning) as record:
        audio = load_audio(path, max_seconds=2, long_audio="split")
    assert [str(w.message) for w in record] == [
        f"{path}: audio is 3.0 s, longer than 2 s; it will be transcribed in overlapping windows merged at the seams"
    ]
    np.testing.assert_array_equal(audio, written[:, 0])  # the full signal, not truncated


def test_no_limit_accepts_long_audio(tmp_path: Path) -> None:
    path = write(tmp_path / "lecture.wav", tone(3.0, SAMPLE_RATE), SAMPLE_RATE)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(load_audio(path, max_seconds=None)) == 3 * SAMPLE_RATE


def test_unknown_long_audio_policy(tmp_path: Path) -> None:
    path = write(tmp_path / "clean.wav", tone(1.0, SAMPLE_RATE), SAMPLE_RATE)
    with pytest.raises(ValueError, match="'truncate'"):
        load_audio(path, long_audio="truncate")  # type: ignore[arg-type]


def test_audio_duration(tmp_path: Path) -> None:
    path = write(tmp_path / "cd.wav", tone(1.5, 44100, channels=2), 44100, "PCM_16")
    assert audio_duration(path) == pytest.approx(1.5)
    assert audio_duration(os.fspath(path)) == pytest.approx(1.5)


def test_audio_duration_checks_the_file(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="file not found"):
        audio_duration(tmp_path / "nope.wav")
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(np.random.default_rng(1).bytes(4096))
    with pytest.raises(AudioError, match="cannot decode") as info:
        audio_duration(corrupt)
    assert info.value.path == str(corrupt)
