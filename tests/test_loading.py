"""Resolving model arguments, frozen teachers, fingerprints."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from voxdistill.errors import ConversionError, ModelLoadError
from voxdistill.models.convert import CONVERSION_MARKER
from voxdistill.models.fingerprint import fingerprint
from voxdistill.models.loading import load_whisper, resolve_model_folder


def test_bundled_conversion_is_cached_and_complete(tiny_en_folder):
    again = resolve_model_folder("bundled:whisper-tiny.en")
    assert again == tiny_en_folder
    for name in ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
                 "tokenizer_config.json", "preprocessor_config.json", CONVERSION_MARKER):
        assert (tiny_en_folder / name).is_file(), name
    # No half-written conversion is left beside it.
    assert not [p for p in tiny_en_folder.parent.iterdir() if p.name.startswith(".")]


def test_teacher_is_frozen(tiny_random_whisper):
    whisper = load_whisper(str(tiny_random_whisper))
    assert not whisper.model.training
    assert not any(p.requires_grad for p in whisper.model.parameters())
    student = load_whisper(str(tiny_random_whisper), frozen=False)
    assert all(p.requires_grad for p in student.model.parameters())


def test_unknown_bundled_name_lists_the_known_ones():
    with pytest.raises(ModelLoadError, match="bundled:whisper-tiny.en, bundled:whisper-base"):
        resolve_model_folder("bundled:whisper-huge")


def test_missing_folder_is_refused(tmp_path):
    with pytest.raises(ModelLoadError, match="no such model folder"):
        resolve_model_folder(str(tmp_path / "nope"))


def test_folder_that_is_no_model_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("not a model")  # an empty folder has its own message
    with pytest.raises(ModelLoadError, match="neither a Hugging Face folder"):
        resolve_model_folder(str(tmp_path))


def test_ct2_folder_without_tokenizer_says_how_to_fix(tmp_path, tiny_en_folder):
    (tmp_path / "model.bin").write_bytes(b"\x06\x00\x00\x00")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ConversionError, match="--copy_files tokenizer.json"):
        resolve_model_folder(str(tmp_path))


def test_hub_id_offline_gives_advice():
    # conftest sets HF_HUB_OFFLINE=1, as on a machine without network.
    with pytest.raises(ModelLoadError, match="hub cannot be reached.*bundled:whisper-tiny.en"):
        load_whisper("openai/whisper-tiny")


def test_fingerprint_changes_with_weights_and_preprocessing(tiny_random_whisper):
    whisper = load_whisper(str(tiny_random_whisper))
    base = whisper.fingerprint
    assert base == fingerprint(whisper.model, whisper.processor.feature_extractor)

    with torch.no_grad():
        whisper.model.model.decoder.layer_norm.bias[0] += 1e-3
    assert fingerprint(whisper.model, whisper.processor.feature_extractor).weights != base.weights

    other = load_whisper(str(tiny_random_whisper))
    other.processor.feature_extractor.hop_length = 320
    moved = fingerprint(other.model, other.processor.feature_extractor)
    assert moved.weights == base.weights
    assert moved.digest != base.digest


def test_fingerprint_is_stable_across_processes(tiny_random_whisper, tmp_path):
    here = load_whisper(str(tiny_random_whisper)).fingerprint
    # A copy in another folder, read by two fresh processes: same model, same fingerprint.
    copy = shutil.copytree(tiny_random_whisper, tmp_path / "copy")
    digests = set()
    for folder in (tiny_random_whisper, copy):
        out = subprocess.run(
            [sys.executable, "-m", "voxdistill.cli", "model", "info", str(folder), "--json"],
            capture_output=True, text=True, check=True, env=os.environ.copy(),
        )
        digests.add(json.loads(out.stdout)["fingerprint"]["digest"])
    assert digests == {here.digest}
