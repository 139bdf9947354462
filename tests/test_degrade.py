"""Degradations measured on a seeded vowel-like signal: SNR, noise colour, telephone band, RT60, clipping."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import welch

from voxdistill.audio import SAMPLE_RATE
from voxdistill.data.degrade import (
    DOMAINS,
    NOISES,
    Degradation,
    Domain,
    add_noise,
    apply_domain,
    brown_noise,
    clip,
    get_domain,
    pink_noise,
    reverberate,
    synthetic_rir,
    telephone,
)


def vowel(seconds: float = 2.0, seed: int = 0, hiss: float = 0.1) -> np.ndarray:
    """A 120 Hz voice: 30 harmonics under a 2-formant envelope, syllable-rate (4 Hz) amplitude
    modulation, and seeded white hiss so the spectrum reaches from DC to 8 kHz. float32, peak < 1."""
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    voice = np.zeros_like(t)
    for k in range(1, 31):
        f = 120.0 * k
        formants = 1.0 / (1 + ((f - 700) / 200) ** 2) + 0.5 / (1 + ((f - 1200) / 250) ** 2)
        voice += (1.0 / k + formants) * np.sin(2 * np.pi * f * t)
    voice *= 0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * t) ** 2
    voice *= 0.3 / np.max(np.abs(voice))
    noise = hiss * 0.3 * np.random.default_rng(seed).standard_normal(len(t))
    return (voice + noise).astype(np.float32)


def power(x: np.ndarray) -> float:
    return float(np.mean(np.asarray(x, dtype=np.float64) ** 2))


def band_fractions(x: np.ndarray) -> tuple[float, float]:
    """Fractions of the energy above 3.6 kHz and below 250 Hz."""
    spectrum = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE)
    total = spectrum.sum()
    return spectrum[freqs > 3600].sum() / total, spectrum[freqs < 250].sum() / total


def measured_rt60(rir: np.ndarray) -> float:
    """T20 × 3: Schroeder backward-integrated energy decay, line fitted between -5 and -25 dB."""
    energy = np.cumsum(rir[::-1].astype(np.float64) ** 2)[::-1]
    decay_db = 10 * np.log10(energy / energy[0])
    t = np.arange(len(rir)) / SAMPLE_RATE
    fit = (decay_db <= -5) & (decay_db >= -25)
    slope_db_per_s = np.polyfit(t[fit], decay_db[fit], 1)[0]
    return -60.0 / slope_db_per_s


def spectral_slope_db_per_decade(x: np.ndarray) -> float:
    freqs, psd = welch(x, fs=SAMPLE_RATE, nperseg=4096)
    band = (freqs >= 100) & (freqs <= 4000)
    return 10 * np.polyfit(np.log10(freqs[band]), np.log10(psd[band]), 1)[0]


@pytest.mark.parametrize("noise_kind", sorted(NOISES))
@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 7.5, 20.0, 40.0])
def test_add_noise_hits_the_target_snr(noise_kind, snr_db):
    speech = vowel()
    noise = NOISES[noise_kind](len(speech), np.random.default_rng(1))
    noisy = add_noise(speech, noise, snr_db)
    added = noisy.astype(np.float64) - speech
    assert noisy.dtype == np.float32
    assert 10 * np.log10(power(speech) / power(added)) == pytest.approx(snr_db, abs=0.01)


@pytest.mark.parametrize("noise_seconds", [0.3, 5.0])
def test_add_noise_tiles_short_noise_and_cuts_long_noise(noise_seconds):
    speech = vowel(seconds=1.0)
    noise = NOISES["pink"](round(noise_seconds * SAMPLE_RATE), np.random.default_rng(1))
    added = add_noise(speech, noise, 10.0).astype(np.float64) - speech
    assert added.shape == speech.shape
    assert 10 * np.log10(power(speech) / power(added)) == pytest.approx(10.0, abs=0.01)


def test_add_noise_refuses_silent_speech():
    with pytest.raises(ValueError, match="silent"):
        add_noise(np.zeros(1000, np.float32), NOISES["white"](1000, np.random.default_rng(0)), 10.0)


@pytest.mark.parametrize("kind", sorted(NOISES))
def test_noises_are_float32_unit_rms(kind):
    noise = NOISES[kind](SAMPLE_RATE, np.random.default_rng(0))
    assert noise.dtype == np.float32 and noise.shape == (SAMPLE_RATE,)
    assert np.sqrt(power(noise)) == pytest.approx(1.0, rel=1e-5)


@pytest.mark.parametrize(("generate", "expected_slope"), [(pink_noise, -10.0), (brown_noise, -20.0)])
def test_coloured_noise_spectral_slope(generate, expected_slope):
    noise = generate(4 * SAMPLE_RATE, np.random.default_rng(0))
    assert spectral_slope_db_per_decade(noise) == pytest.approx(expected_slope, abs=3.0)


def test_telephone_keeps_the_voice_band_and_the_length():
    speech = vowel(hiss=0.2)
    high_in, low_in = band_fractions(speech)
    assert high_in > 0.1 and low_in > 0.1  # the input really is wideband
    for n in (len(speech), len(speech) - 1):  # odd lengths survive the 16 -> 8 -> 16 kHz round trip
        out = telephone(speech[:n])
        assert out.dtype == np.float32 and out.shape == (n,)
    high_out, low_out = band_fractions(telephone(speech))
    assert high_out < 0.01
    assert low_out < 0.05


@pytest.mark.parametrize("rt60_s", [0.3, 0.8])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_synthetic_rir_decays_at_the_requested_rt60(rt60_s, seed):
    rir = synthetic_rir(rt60_s, np.random.default_rng(seed))
    assert rir[0] == 1.0 and np.max(np.abs(rir[1:])) < 1.0  # the direct path is the strongest
    assert measured_rt60(rir) == pytest.approx(rt60_s, rel=0.2)


def test_reverberate_keeps_length_and_peak():
    speech = vowel()
    wet = reverberate(speech, synthetic_rir(0.8, np.random.default_rng(0)))
    assert wet.shape == speech.shape and wet.dtype == np.float32
    assert np.max(np.abs(wet)) == pytest.approx(np.max(np.abs(speech)), rel=1e-6)
    assert not np.allclose(wet, speech, atol=1e-3)


@pytest.mark.parametrize("fraction", [0.005, 0.02, 0.1])
def test_clip_clips_the_requested_fraction(fraction):
    speech = vowel()
    clipped = clip(speech, fraction)
    peak = np.max(np.abs(clipped))
    assert peak == pytest.approx(np.max(np.abs(speech)), rel=1e-6)
    at_peak = np.mean(np.abs(clipped) >= peak * (1 - 1e-6))
    assert at_peak == pytest.approx(fraction, abs=max(0.1 * fraction, 2 / len(speech)))


def test_reverb_and_clip_leave_silence_silent():
    silence = np.zeros(SAMPLE_RATE, np.float32)
    assert np.array_equal(reverberate(silence, synthetic_rir(0.3, np.random.default_rng(0))), silence)
    assert np.array_equal(clip(silence, 0.02), silence)


def _is_stochastic(domain: Domain) -> bool:
    return any(step.kind in ("noise", "reverb") for step in domain.steps)


@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_every_domain_is_deterministic_finite_and_in_range(name):
    domain = get_domain(name)
    speech = vowel()
    first = apply_domain(domain, speech, np.random.default_rng(7))
    again = apply_domain(domain, speech, np.random.default_rng(7))
    other = apply_domain(domain, speech, np.random.default_rng(8))
    assert first.dtype == np.float32 and first.shape == speech.shape
    assert np.all(np.isfinite(first)) and np.max(np.abs(first)) <= 1.0
    assert np.array_equal(first, again)
    assert np.array_equal(first, other) != _is_stochastic(domain)
    assert domain.describe()


def test_apply_domain_scales_down_loud_output_and_never_amplifies():
    loud = 3.0 * vowel()
    assert np.max(np.abs(apply_domain(DOMAINS["white-snr10"], loud, np.random.default_rng(0)))) == \
        pytest.approx(0.99, rel=1e-6)
    quiet = 0.01 * vowel()
    assert np.array_equal(apply_domain(DOMAINS["clean"], quiet, np.random.default_rng(0)), quiet)


def test_registry_names_and_unknown_domain():
    assert DOMAINS["clean"].steps == () and DOMAINS["clean"].describe() == "clean speech"
    assert all(domain.name == name for name, domain in DOMAINS.items())
    assert DOMAINS["reverb-0.5-pink-snr10"].describe() == \
        "reverberation, RT60 0.5 s, then pink noise at 10 dB SNR"
    with pytest.raises(ValueError, match="unknown domain 'cafe'.*white-snr20"):
        get_domain("cafe")


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"kind": "noise", "noise": "white"}, "snr_db"),
    ({"kind": "noise", "snr_db": 10.0}, "noise"),
    ({"kind": "noise", "noise": "violet", "snr_db": 10.0}, "noise"),
    ({"kind": "noise", "noise": "white", "snr_db": 100.0}, "snr_db"),
    ({"kind": "noise", "noise": "white", "snr_db": float("nan")}, "snr_db"),
    ({"kind": "telephone", "snr_db": 10.0}, "snr_db"),
    ({"kind": "reverb"}, "rt60_s"),
    ({"kind": "reverb", "rt60_s": 300.0}, "rt60_s"),
    ({"kind": "reverb", "rt60_s": 0.0}, "rt60_s"),
    ({"kind": "reverb", "rt60_s": 0.5, "clip_fraction": 0.02}, "clip_fraction"),
    ({"kind": "clip", "clip_fraction": 0.0}, "clip_fraction"),
    ({"kind": "clip", "clip_fraction": 0.9}, "clip_fraction"),
    ({"kind": "echo"}, "kind"),
])
def test_degradation_validation_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=rf"\b{field}\b"):
        Degradation(**kwargs)
