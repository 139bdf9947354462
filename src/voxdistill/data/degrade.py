"""Acoustic domains: deterministic degradations of clean synthesised speech.

A Domain is a named chain of Degradations (noise, telephone channel, reverberation, clipping).
All signals are 1-D at SAMPLE_RATE; every random draw comes from the caller's Generator, so the
same seed gives the same audio bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.signal import butter, fftconvolve, sosfilt, sosfiltfilt

from voxdistill.audio import SAMPLE_RATE, resample

# Noise: each generator is a pure function of (n_samples, rng), float32 at SAMPLE_RATE, unit RMS.

_BROWN_HIGHPASS_HZ = 20.0  # removes a random walk's unbounded drift; below any voice
_MAINS_HZ = 50.0  # European mains fundamental
_HUM_HARMONICS = (1.0, 0.5, 0.3, 0.2, 0.1)  # amplitudes of 50, 100, ..., 250 Hz
_HUM_HISS = 0.05  # white noise riding on the hum, relative to the hum's RMS (-26 dB)


def _unit_rms(x: np.ndarray) -> np.ndarray:
    return (x / np.sqrt(np.mean(x**2))).astype(np.float32)


def white_noise(n_samples: int, rng: np.random.Generator) -> np.ndarray:
    return _unit_rms(rng.standard_normal(n_samples))


def pink_noise(n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Power falling as 1/f (-10 dB/decade): white noise shaped by 1/sqrt(f) in the frequency domain."""
    spectrum = np.fft.rfft(rng.standard_normal(n_samples))  # (n_samples // 2 + 1,)
    freqs = np.fft.rfftfreq(n_samples)
    spectrum[0] = 0.0  # 1/f is infinite at DC
    spectrum[1:] /= np.sqrt(freqs[1:])
    return _unit_rms(np.fft.irfft(spectrum, n_samples))


def brown_noise(n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Power falling as 1/f² (-20 dB/decade): integrated white noise, its drift high-passed away."""
    walk = np.cumsum(rng.standard_normal(n_samples))
    sos = butter(2, _BROWN_HIGHPASS_HZ, btype="highpass", fs=SAMPLE_RATE, output="sos")
    return _unit_rms(sosfilt(sos, walk))


def hum(n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Mains hum: 50 Hz and decaying harmonics at random phases, plus a little hiss."""
    t = np.arange(n_samples) / SAMPLE_RATE  # (n_samples,) seconds
    phases = rng.uniform(0.0, 2 * np.pi, len(_HUM_HARMONICS))
    tone = sum(a * np.sin(2 * np.pi * _MAINS_HZ * k * t + p)
               for k, (a, p) in enumerate(zip(_HUM_HARMONICS, phases), start=1))
    hiss = _HUM_HISS * np.sqrt(np.mean(tone**2)) * rng.standard_normal(n_samples)
    return _unit_rms(tone + hiss)


NOISES: dict[str, Callable[[int, np.random.Generator], np.ndarray]] = {
    "white": white_noise, "pink": pink_noise, "brown": brown_noise, "hum": hum,
}


def add_noise(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """speech + noise scaled so that 10·log10(P_speech / P_noise) == snr_db; noise tiled or cut to fit.

    P is the mean power over the whole clip, pauses included (not the active-speech level of
    ITU-T P.56): it needs no voice-activity detector, so it is exact and reproducible, at the cost
    that a clip with long pauses sounds noisier during speech than its nominal SNR.
    """
    fitted = np.resize(noise.astype(np.float64), speech.shape)  # repeats the noise when it is short
    p_speech = np.mean(speech.astype(np.float64) ** 2)
    if p_speech == 0.0:
        raise ValueError("speech is silent (zero power), so no noise level gives a defined SNR")
    p_noise = np.mean(fitted**2)
    scale = np.sqrt(p_speech / (p_noise * 10.0 ** (snr_db / 10.0)))
    return (speech + scale * fitted).astype(np.float32)


# Channel, room and level distortions.

_TELEPHONE_BAND = (300.0, 3400.0)  # Hz, the ITU-T G.712 voice band
_TELEPHONE_ORDER = 6  # Butterworth order; run forward and back, so 12 in magnitude
_TELEPHONE_RATE = 8000  # Hz, narrowband G.711
_MU = 255.0  # G.711 μ-law constant


def _mu_law_8bit(x: np.ndarray) -> np.ndarray:
    """Compand, quantise to 256 codes, expand. A codec saturates at full scale, hence the clip."""
    x = np.clip(x, -1.0, 1.0)
    companded = np.sign(x) * np.log1p(_MU * np.abs(x)) / np.log1p(_MU)  # in [-1, 1]
    code = np.clip(np.floor(companded * 128), -128, 127)  # 8 bits, mid-rise like G.711
    level = (code + 0.5) / 128
    return np.sign(level) * np.expm1(np.abs(level) * np.log1p(_MU)) / _MU


def telephone(speech: np.ndarray) -> np.ndarray:
    """A narrowband call: 300–3400 Hz band-pass, 8 kHz, 8-bit μ-law, back to 16 kHz; same length."""
    sos = butter(_TELEPHONE_ORDER, _TELEPHONE_BAND, btype="bandpass", fs=SAMPLE_RATE, output="sos")
    band = sosfiltfilt(sos, speech.astype(np.float64))  # zero phase: no group delay to undo
    narrow = resample(band, SAMPLE_RATE, _TELEPHONE_RATE)  # (ceil(n / 2),)
    wide = resample(_mu_law_8bit(narrow), _TELEPHONE_RATE, SAMPLE_RATE)  # (2 * ceil(n / 2),)
    return wide[: len(speech)]


_DECAY_PER_RT60 = 3 * math.log(10)  # ≈ 6.9: amplitude falls 1000× (60 dB) in one RT60
_EARLY_WINDOW_S = 0.050  # early reflections arrive within ~50 ms of the direct sound
_FIRST_REFLECTION_S = 0.001  # 34 cm of extra path: no surface is much nearer the talker
_N_EARLY_REFLECTIONS = 6
_EARLY_GAIN = (0.2, 0.6)  # reflection amplitudes relative to the envelope (walls absorb some)
# Std of the diffuse tail at t = 0 relative to the direct path. Fixed, so a longer RT60 means more
# reverberant energy against the same direct sound, as in a real room.
_TAIL_GAIN = 0.1


def synthetic_rir(rt60_s: float, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Room impulse response: direct path (= 1) at t = 0, sparse early reflections, and a Gaussian tail
    with amplitude envelope exp(-6.9·t/rt60). Lasts rt60 (to -60 dB), at least the early window."""
    n = math.ceil(max(rt60_s, _EARLY_WINDOW_S) * sample_rate)
    t = np.arange(n) / sample_rate  # (n,) seconds
    envelope = np.exp(-_DECAY_PER_RT60 * t / rt60_s)  # (n,)
    rir = _TAIL_GAIN * envelope * rng.standard_normal(n)
    delays = rng.integers(round(_FIRST_REFLECTION_S * sample_rate), round(_EARLY_WINDOW_S * sample_rate),
                          _N_EARLY_REFLECTIONS)
    signs = rng.choice((-1.0, 1.0), _N_EARLY_REFLECTIONS)
    rir[delays] += signs * rng.uniform(*_EARLY_GAIN, _N_EARLY_REFLECTIONS) * envelope[delays]
    rir[0] = 1.0
    return rir.astype(np.float32)


def _match_peak(signal: np.ndarray, reference: np.ndarray) -> np.ndarray:
    peak = np.max(np.abs(signal))
    if peak == 0.0:  # silence in, silence out (a TTS engine may speak nothing for punctuation)
        return signal.astype(np.float32)
    return (signal * (np.max(np.abs(reference)) / peak)).astype(np.float32)


def reverberate(speech: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """speech convolved with rir, cut to the input length, rescaled to the input's peak level."""
    wet = fftconvolve(speech.astype(np.float64), rir.astype(np.float64))[: len(speech)]
    return _match_peak(wet, speech)


def clip(speech: np.ndarray, clip_fraction: float) -> np.ndarray:
    """Hard clipping of the loudest clip_fraction of samples, then rescaled to the original peak."""
    level = np.quantile(np.abs(speech), 1.0 - clip_fraction)
    return _match_peak(np.clip(speech, -level, level), speech)


# Declarative spec.

# The parameters each kind needs; every other parameter must stay None.
_PARAMETERS = {
    "noise": ("noise", "snr_db"), "telephone": (), "reverb": ("rt60_s",), "clip": ("clip_fraction",),
}
_ALL_PARAMETERS = ("noise", "snr_db", "rt60_s", "clip_fraction")
# Wide enough for any realistic condition; values outside are likely a linear ratio given as dB,
# or milliseconds given as seconds.
_SNR_RANGE_DB = (-20.0, 60.0)
_RT60_MAX_S = 5.0
_CLIP_MAX_FRACTION = 0.5  # past half the samples clipped the speech is a square wave


@dataclass(frozen=True)
class Degradation:
    """One step of a domain. Only the parameters of its kind are set; the others stay None."""

    kind: str  # "noise", "telephone", "reverb" or "clip"
    noise: str | None = None  # noise colour, a key of NOISES
    snr_db: float | None = None  # speech-to-noise power ratio over the whole clip, dB
    rt60_s: float | None = None  # reverberation time (60 dB decay), seconds
    clip_fraction: float | None = None  # fraction of samples hard-clipped, in (0, 0.5]

    def __post_init__(self) -> None:
        if self.kind not in _PARAMETERS:
            raise ValueError(f"kind must be one of {tuple(_PARAMETERS)}, got {self.kind!r}")
        needed = _PARAMETERS[self.kind]
        for name in _ALL_PARAMETERS:
            value = getattr(self, name)
            if name in needed and value is None:
                raise ValueError(f"{name} is required for a {self.kind!r} degradation")
            if name not in needed and value is not None:
                raise ValueError(f"{name} is not used by a {self.kind!r} degradation; leave it None")
        if self.noise is not None and self.noise not in NOISES:
            raise ValueError(f"noise must be one of {tuple(NOISES)}, got {self.noise!r}")
        lo, hi = _SNR_RANGE_DB
        if self.snr_db is not None and not lo <= self.snr_db <= hi:
            raise ValueError(f"snr_db must be within [{lo:g}, {hi:g}] dB, got {self.snr_db}")
        if self.rt60_s is not None and not 0.0 < self.rt60_s <= _RT60_MAX_S:
            raise ValueError(f"rt60_s must be within (0, {_RT60_MAX_S:g}] seconds, got {self.rt60_s}")
        if self.clip_fraction is not None and not 0.0 < self.clip_fraction <= _CLIP_MAX_FRACTION:
            raise ValueError(
                f"clip_fraction must be within (0, {_CLIP_MAX_FRACTION:g}], got {self.clip_fraction}"
            )

    def describe(self) -> str:
        if self.kind == "noise":
            source = "mains hum" if self.noise == "hum" else f"{self.noise} noise"
            return f"{source} at {self.snr_db:g} dB SNR"
        if self.kind == "telephone":
            return "telephone channel (300-3400 Hz, 8 kHz μ-law)"
        if self.kind == "reverb":
            return f"reverberation, RT60 {self.rt60_s:g} s"
        return f"{100 * self.clip_fraction:g}% of samples clipped"


@dataclass(frozen=True)
class Domain:
    name: str  # key in DOMAINS and label in summary tables
    steps: tuple[Degradation, ...]  # applied in order; empty means clean speech

    def describe(self) -> str:
        return ", then ".join(step.describe() for step in self.steps) or "clean speech"


_PEAK_CEILING = 0.99  # a little headroom below full scale for anything written as 16-bit PCM


def apply_degradation(step: Degradation, speech: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if step.kind == "noise":
        return add_noise(speech, NOISES[step.noise](len(speech), rng), step.snr_db)
    if step.kind == "telephone":
        return telephone(speech)
    if step.kind == "reverb":
        return reverberate(speech, synthetic_rir(step.rt60_s, rng))
    return clip(speech, step.clip_fraction)


def apply_domain(domain: Domain, speech: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The domain's steps applied in order to 1-D speech at SAMPLE_RATE; float32, same length.

    Scaled down to a 0.99 peak only if it would exceed 1.0; never amplified, so quiet stays quiet.
    """
    out = speech.astype(np.float32)
    for step in domain.steps:
        out = apply_degradation(step, out, rng)
    peak = np.max(np.abs(out), initial=0.0)
    if peak > 1.0:
        out = (out * (_PEAK_CEILING / peak)).astype(np.float32)
    return out


def _noise(colour: str, snr_db: float) -> Degradation:
    return Degradation("noise", noise=colour, snr_db=snr_db)


_TELEPHONE = Degradation("telephone")

# Noise before the telephone channel: the handset picks up the room, and the line carries both.
# Noise after reverberation: a diffuse background, its SNR against the reverberant speech.
DOMAINS: dict[str, Domain] = {domain.name: domain for domain in (
    Domain("clean", ()),
    Domain("white-snr20", (_noise("white", 20),)),
    Domain("white-snr10", (_noise("white", 10),)),
    Domain("pink-snr10", (_noise("pink", 10),)),
    Domain("pink-snr5", (_noise("pink", 5),)),
    Domain("brown-snr5", (_noise("brown", 5),)),
    Domain("hum-snr10", (_noise("hum", 10),)),
    Domain("telephone", (_TELEPHONE,)),
    Domain("telephone-white-snr15", (_noise("white", 15), _TELEPHONE)),
    Domain("reverb-0.3", (Degradation("reverb", rt60_s=0.3),)),
    Domain("reverb-0.8", (Degradation("reverb", rt60_s=0.8),)),
    Domain("reverb-0.5-pink-snr10", (Degradation("reverb", rt60_s=0.5), _noise("pink", 10))),
    Domain("clip-2pct", (Degradation("clip", clip_fraction=0.02),)),
)}


def get_domain(name: str) -> Domain:
    try:
        return DOMAINS[name]
    except KeyError:
        raise ValueError(f"unknown domain {name!r}; known domains: {', '.join(DOMAINS)}") from None
