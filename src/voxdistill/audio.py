"""Audio loading: any file libsndfile reads -> float32 mono at 16 kHz, or an AudioError saying why not.

Every conversion that changes the signal (downmix, resample) is announced with an
AudioConversionWarning naming the file, so a surprising corpus shows itself in the logs.
"""

from __future__ import annotations

import math
import os
import stat
import warnings
from typing import Literal, get_args

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from voxdistill.errors import AudioError


def exact_div(a: int, b: int) -> int:
    """a / b as an int; a ValueError if b does not divide a, so derived constants can't silently round."""
    if a % b != 0:
        raise ValueError(f"{a} is not divisible by {b}")
    return a // b


# Whisper's front end: these fix the mel frame grid the teacher was trained on.
SAMPLE_RATE = 16000  # Hz
N_FFT = 400  # 25 ms analysis window
HOP_LENGTH = 160  # 10 ms between mel frames
CHUNK_LENGTH = 30  # seconds of audio the encoder sees at once
N_SAMPLES = CHUNK_LENGTH * SAMPLE_RATE  # 480000 samples per chunk
N_FRAMES = exact_div(N_SAMPLES, HOP_LENGTH)  # 3000 mel frames per chunk

# Outside this range a file is almost surely mislabelled (a wrong header) rather than real speech.
MIN_SAMPLE_RATE = 4000  # Hz
MAX_SAMPLE_RATE = 384000  # Hz
# Shorter clips cannot hold a word; Whisper still "transcribes" them (1 ms gives "you"), so a short
# clip would put invented words into pseudo-labels, training and scores. Refused everywhere.
MIN_SECONDS = 0.1

LongAudioPolicy = Literal["refuse", "split"]
TOO_LONG_ADVICE = ('pass long_audio="split" (CLI: --long-audio split) to transcribe it whole, in overlapping '
                   "windows merged at the seams")
_LONG_AUDIO_POLICIES = get_args(LongAudioPolicy)


class AudioConversionWarning(UserWarning):
    """A file was usable but changed on load (downmixed, resampled, or to be split into windows)."""


def _decode_error(path: str, err: sf.LibsndfileError) -> AudioError:
    return AudioError(
        path, f"cannot decode: {err.error_string}; convert it to WAV/FLAC 16 kHz mono"
    )


def _open_checks(path: str) -> float:
    """Duration in seconds of a usable audio file from its header, or an AudioError. Reads no samples."""
    # Checked before libsndfile, which reports these as "System error" or "Format not recognised".
    if not os.path.exists(path):
        raise AudioError(path, "file not found")
    mode = os.stat(path).st_mode
    if stat.S_ISDIR(mode):
        raise AudioError(path, "is a directory, not an audio file")
    if not stat.S_ISREG(mode):
        # A pipe or device has no size to check and no header to seek back to.
        raise AudioError(path, f"is a {_file_kind(mode)}, not a regular file; save the audio to a file and give that")
    if os.path.getsize(path) == 0:
        raise AudioError(path, "file is empty (0 bytes)")
    try:
        info = sf.info(path)
    except sf.LibsndfileError as err:
        raise _decode_error(path, err) from err
    if not MIN_SAMPLE_RATE <= info.samplerate <= MAX_SAMPLE_RATE:
        raise AudioError(
            path,
            f"unusual sample rate {info.samplerate} Hz (expected {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz); "
            "check the file header or resample it to 16 kHz",
        )
    _check_wav_complete(path)
    return info.frames / info.samplerate


def _file_kind(mode: int) -> str:
    kinds = ((stat.S_ISFIFO, "named pipe (FIFO)"), (stat.S_ISCHR, "character device"),
             (stat.S_ISBLK, "block device"), (stat.S_ISSOCK, "socket"))
    return next((kind for test, kind in kinds if test(mode)), "special file")


def _check_wav_complete(path: str) -> None:
    """An AudioError if a WAV file holds fewer sample bytes than its header's data chunk promises
    (a cut-off copy or download). libsndfile reads such a file without complaint, as if complete."""
    with open(path, "rb") as f:
        head = f.read(12)
        if head[:4] != b"RIFF" or head[8:] != b"WAVE":
            return  # not RIFF/WAVE (FLAC, OGG, RF64, ...): their decoders report damage themselves
        block_align = rate = 0
        while len(header := f.read(8)) == 8:
            chunk, size = header[:4], int.from_bytes(header[4:], "little")
            if chunk == b"fmt ":
                fmt = f.read(16)
                rate, block_align = int.from_bytes(fmt[4:8], "little"), int.from_bytes(fmt[12:14], "little")
                size -= len(fmt)
            elif chunk == b"data":
                held = os.path.getsize(path) - f.tell()
                # 0 and 0xFFFFFFFF mean "length unknown" (a WAV streamed to a pipe): nothing promised.
                if size not in (0, 0xFFFFFFFF) and size > held:
                    promised, there = ((f"{size / block_align / rate:.3f} s", f"{held / block_align / rate:.3f} s")
                                       if block_align and rate else (f"{size} bytes", f"{held} bytes"))
                    raise AudioError(path, f"truncated: its header promises {promised} of audio but the "
                                           f"file holds only {there}; copy or download it again")
                return
            f.seek(size + size % 2, os.SEEK_CUR)  # chunks are padded to an even size


def audio_duration(path: str | os.PathLike[str]) -> float:
    """Duration in seconds from the file header, without decoding the samples."""
    return _open_checks(os.fspath(path))


def load_audio(
    path: str | os.PathLike[str],
    *,
    max_seconds: float | None = CHUNK_LENGTH,
    long_audio: LongAudioPolicy = "refuse",
    too_long_advice: str = TOO_LONG_ADVICE,
) -> np.ndarray:
    """Decode `path` to a 1-D float32 signal at SAMPLE_RATE.

    max_seconds: longest accepted duration, None for no limit.
    long_audio: what to do past max_seconds — "refuse" (AudioError) or "split"
        (return the whole signal, warn that it will be transcribed in CHUNK_LENGTH windows).
    too_long_advice: what the refusal of long audio tells the user to do (the default names
        transcription's option; a caller that cannot split says what it can do instead).
    Peaks above 1.0 (possible in float WAV) are kept: clipping them would distort the speech.
    Clips shorter than MIN_SECONDS and WAV files holding less than their header promises are refused.
    """
    if long_audio not in _LONG_AUDIO_POLICIES:
        raise ValueError(f"long_audio must be one of {_LONG_AUDIO_POLICIES}, got {long_audio!r}")

    file = os.fspath(path)
    duration = _open_checks(file)
    too_long = max_seconds is not None and duration > max_seconds
    # Refuse from the header, before decoding what may be hours of audio.
    if too_long and long_audio == "refuse":
        raise AudioError(file, f"audio is {duration:.1f} s, longer than the {max_seconds:g} s limit; {too_long_advice}")

    try:
        data, rate = sf.read(file, dtype="float32", always_2d=True)  # (frames, channels)
    except sf.LibsndfileError as err:  # a valid header over a corrupt body fails only here
        raise _decode_error(file, err) from err

    if data.shape[0] == 0:
        raise AudioError(file, "contains no samples")
    if data.shape[0] < MIN_SECONDS * rate:
        raise AudioError(file, f"only {data.shape[0] / rate * 1000:.0f} ms of audio, too short to hold "
                               f"speech (the minimum is {MIN_SECONDS:g} s); leave it out")
    n_bad = int(data.size - np.count_nonzero(np.isfinite(data)))
    if n_bad:
        # One NaN would turn every mel frame and the loss into NaN, far from the file that caused it.
        raise AudioError(file, f"contains {n_bad} non-finite (NaN/inf) samples")

    n_channels = data.shape[1]
    audio = data.mean(axis=1, dtype=np.float32)  # (frames,)
    if n_channels > 1:
        _warn(f"{file}: {n_channels} channels downmixed to mono")

    if rate != SAMPLE_RATE:
        audio = resample(audio, rate)
        _warn(f"{file}: resampled {rate} Hz -> {SAMPLE_RATE} Hz")

    if too_long:
        _warn(
            f"{file}: audio is {duration:.1f} s, longer than {max_seconds:g} s; "
            "it will be transcribed in overlapping windows merged at the seams"
        )
    return np.ascontiguousarray(audio)


def resample(audio: np.ndarray, orig_rate: int, target_rate: int = SAMPLE_RATE) -> np.ndarray:
    """`audio` (samples along axis 0) taken from orig_rate to target_rate Hz, as float32.

    The one resampler of the project, so files and synthesised speech go through the same filter.
    """
    if orig_rate == target_rate:
        return audio.astype(np.float32, copy=False)
    g = math.gcd(orig_rate, target_rate)
    # Polyphase resampling handles any rational ratio and low-passes before decimating, so no aliasing.
    return resample_poly(audio, target_rate // g, orig_rate // g).astype(np.float32, copy=False)


def _warn(message: str) -> None:
    # stacklevel 3 points the warning at load_audio's caller, not at this module.
    warnings.warn(message, AudioConversionWarning, stacklevel=3)
