"""A Whisper model written as a folder other tools run: ``hf``, a Hugging Face Whisper folder, or
``ct2``, a CTranslate2 folder made by the ``ctranslate2`` package's own converter
(``TransformersConverter``) at a chosen weight quantization; and the CTranslate2 folder the ``ct2``
runtime keeps in the cache for a model that is not one (`ct2_folder_for`).

- ``hf``: float32 safetensors, generation config, tokenizer, and ``preprocessor_config.json`` as
  well as transformers 5's ``processor_config.json``, so tools that read only the former, such as
  faster-whisper and CTranslate2's converter, see the model's window.
- ``ct2``: ``model.bin`` with the tokenizer and the model's ``preprocessor_config.json`` (its window)
  beside it.

The converter works unchanged with transformers 5 for Whisper. The one gap is the preprocessor
file: transformers 5 saves a processor as ``processor_config.json``, so asking the converter to copy
``preprocessor_config.json`` from a student folder fails; voxdistill writes it from the model's own
feature extractor instead. (Also noted: for an English-only model the converter leaves ``lang_ids``
empty, as transformers 5 tokenizers list no ``additional_special_tokens``; CTranslate2 uses them
only to detect the language of multilingual models.)
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

from voxdistill.audio import SAMPLE_RATE
from voxdistill.data.dataset import clip_pad_step, clip_trailing_samples
from voxdistill.files import folder_written_atomically, sha256_of_files
from voxdistill.formats import EXPORT_RECORD
from voxdistill.models.convert import read_ct2_side_files
from voxdistill.models.ctranslate2_format import check_ct2_file
from voxdistill.models.loading import Whisper, load_whisper, resolve_model_folder
from voxdistill.models.student import STUDENT_FILE, window_seconds
from voxdistill.paths import cache_dir

QUANTIZATIONS = ("int8", "int8_float32", "float16", "float32")  # weight storage of a CTranslate2 folder
# Bump when an exported folder's content changes, so cached CTranslate2 conversions are redone.
EXPORT_VERSION = 1
# The Hugging Face files whose bytes define a model for the cache of CTranslate2 conversions.
_MODEL_FILES = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
                "preprocessor_config.json", "processor_config.json")


def write_whisper_folder(whisper: Whisper, format: str, folder: Path, quantization: str, source: str) -> dict:
    """Write ``whisper`` (loaded from the model argument ``source``) into the existing, empty
    ``folder`` as ``format`` (``hf``, or ``ct2`` with weights stored as ``quantization``), with the
    source's ``student.json`` when it has one and the export record; return the record. Not atomic
    by itself: the caller writes into a temporary folder and renames it."""
    if format == "hf":
        _write_hf(whisper, folder)
    else:
        _write_ct2(whisper, folder, quantization)
    if whisper.folder is not None and (whisper.folder / STUDENT_FILE).is_file():
        shutil.copy2(whisper.folder / STUDENT_FILE, folder / STUDENT_FILE)
    step = clip_pad_step(whisper.processor.feature_extractor)
    record = {
        "format": format, "quantization": quantization, "source": source,
        "source_fingerprint": whisper.fingerprint.to_dict(),
        "parameters": sum(p.numel() for p in whisper.model.parameters()),
        "window_seconds": window_seconds(whisper.model.config), "multilingual": whisper.multilingual,
        # A clip-length model: each clip padded to the next multiple of this (None: to the window).
        "pad_step_seconds": step and step / SAMPLE_RATE,
        # ... after at least this many seconds of zeros.
        "trailing_silence_seconds": clip_trailing_samples(whisper.processor.feature_extractor) / SAMPLE_RATE,
        "export_version": EXPORT_VERSION,
    } | ({"ctranslate2": ctranslate2_version()} if format == "ct2" else {})
    (folder / EXPORT_RECORD).write_text(json.dumps(record, indent=2) + "\n")
    return record


def _write_hf(whisper: Whisper, folder: Path) -> None:
    whisper.model.save_pretrained(folder)
    whisper.processor.save_pretrained(folder)
    whisper.processor.feature_extractor.save_pretrained(folder)  # preprocessor_config.json


def _write_ct2(whisper: Whisper, folder: Path, quantization: str) -> None:
    import ctranslate2

    with tempfile.TemporaryDirectory(prefix=".hf-source.", dir=folder.parent) as scratch:
        source = whisper.folder
        if source is None:  # a hub model: the converter reads a local copy, never the network
            source = Path(scratch)
            whisper.model.save_pretrained(source)
            whisper.processor.save_pretrained(source)
        converter = ctranslate2.converters.TransformersConverter(str(source))
        converter.convert(str(folder), quantization=quantization, force=True)
    # Beside model.bin, config.json (CTranslate2's) and vocabulary.json: what a client needs to make
    # the model's input and read its output. The tokenizer files come from the loaded processor, so
    # a source with only vocab.json/merges.txt still gets a tokenizer.json.
    whisper.processor.tokenizer.save_pretrained(folder)
    whisper.processor.feature_extractor.save_pretrained(folder)


def ctranslate2_version() -> str:
    import ctranslate2

    return ctranslate2.__version__


def is_ct2_folder(model: str) -> bool:
    path = Path(model).expanduser()
    return path.is_dir() and (path / "model.bin").is_file()


def ct2_folder_for(model: str, compute_type: str = "float32") -> Path:
    """A CTranslate2 folder of ``model`` to run at ``compute_type``: ``model`` itself when it is a
    CTranslate2 folder; else its export into the cache (``CACHE/ct2/``), made once per model and
    compute type, weights stored as the compute type (what ``export --quantization`` of that name
    deploys; float32 for a compute type that is no export option).
    The cache key is the bytes of the model's Hugging Face files (a hub model: its fingerprint)."""
    if is_ct2_folder(model):
        folder = Path(model).expanduser()
        # What the torch runtime's conversion reads and checks (`models.loading`), checked here too:
        # CTranslate2 itself reports a missing vocabulary or a cut-off model.bin without naming the file.
        read_ct2_side_files(folder)
        check_ct2_file(folder / "model.bin")
        return folder
    quantization = compute_type if compute_type in QUANTIZATIONS else "float32"
    folder = resolve_model_folder(model)
    if isinstance(folder, Path):
        key = sha256_of_files(folder / name for name in _MODEL_FILES if (folder / name).is_file())
        label = model.split(":", 1)[1] if model.startswith("bundled:") else folder.name
        source = str(folder)
    else:  # a hub id
        key = load_whisper(model).fingerprint.digest
        label = model.replace("/", "--")
        source = model
    digest = hashlib.sha256(f"{key}|{EXPORT_VERSION}|{ctranslate2_version()}".encode()).hexdigest()[:12]
    out = cache_dir() / "ct2" / f"{label}-{quantization}-{digest}"
    if not out.is_dir():
        try:
            with folder_written_atomically(out) as tmp:
                write_whisper_folder(load_whisper(source), "ct2", tmp, quantization, source)
        except OSError:
            if not (out / EXPORT_RECORD).is_file():  # unless a concurrent conversion finished first
                raise
    return out
