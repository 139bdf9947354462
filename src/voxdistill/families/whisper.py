"""The Whisper family: encoder-decoder students made of a subset of the teacher's layers
(`models.student`), and every other Whisper model (teachers: bundled, hub or local). It runs in
PyTorch or CTranslate2 (`runtime.loading`), trains as `distill.whisper_trainer.WhisperTrainer`, and
is exported as a Hugging Face or CTranslate2 folder (`formats.ctranslate2`)."""

from __future__ import annotations

import json

from collections.abc import Mapping
from pathlib import Path

from voxdistill.distill.config import DistillConfig
from voxdistill.distill.whisper_trainer import WhisperTrainer
from voxdistill.families.base import Exported, StudentFamily
from voxdistill.formats.ctranslate2 import write_whisper_folder
from voxdistill.models.loading import load_whisper
from voxdistill.models.student import after_silence
from voxdistill.runtime import WHISPER_BACKENDS, Recogniser, Runtime
from voxdistill.runtime.loading import load_whisper_recogniser


class WhisperFamily(StudentFamily):
    name = "whisper"
    title = "Whisper model"
    folder_description = "a Hugging Face model folder (no config.json)"
    runtimes = WHISPER_BACKENDS
    runtime_option = "runtime"
    export_formats = ("hf", "ct2")

    def recognises(self, model: str | Path) -> bool:
        path = Path(model).expanduser()
        return path.is_dir() and (path / "config.json").is_file()  # Hugging Face or CTranslate2

    def load_recogniser(self, model: str, runtime: Runtime, threads: int | None) -> Recogniser:
        return load_whisper_recogniser(model, runtime, threads)

    def trainer(self, config: DistillConfig, allow_config_change: bool) -> WhisperTrainer:
        return WhisperTrainer(config, allow_config_change)

    def export(self, model: str, format: str, folder: Path, quantization: str) -> Exported:
        whisper = load_whisper(model)
        record = write_whisper_folder(whisper, format, folder, quantization, source=model)
        return Exported(record, None if whisper.folder is None else whisper.folder / "README.md")

    def card_kind(self, provenance: Mapping) -> str:
        return "smaller Whisper"

    def card_usage(self, model_dir: Path) -> str:
        return (
            "## How to use\n\n"
            "```python\nfrom transformers import pipeline\n\n"
            f'asr = pipeline("automatic-speech-recognition", model={json.dumps(str(model_dir))})\n'
            'print(asr("speech.wav")["text"])\n```\n\n'
            "The folder is a standard Whisper checkpoint: `WhisperForConditionalGeneration.from_pretrained` "
            "and `WhisperProcessor.from_pretrained` load it as well.\n"
        )

    def export_card_usage(self, record: Mapping) -> str:
        return _export_usage(record)


WHISPER = WhisperFamily()


def _export_usage(export: Mapping) -> str:
    if export["format"] == "hf":
        return (
            "## How to use\n\n"
            "```python\nfrom transformers import pipeline\n\n"
            'asr = pipeline("automatic-speech-recognition", model="THIS_FOLDER")\n'
            'print(asr("speech.wav")["text"])\n```\n\n'
            "The folder is a standard Whisper checkpoint (`WhisperForConditionalGeneration` and "
            "`WhisperProcessor` load it). For CTranslate2 and faster-whisper: "
            "`voxdistill export THIS_FOLDER --format ct2 --quantization int8 --out DIR`.\n"
            + ("\nThis model was trained to encode each clip at its own length (`pad_to_multiple_of` in "
               "`preprocessor_config.json`); transformers pads every clip to the whole window, which it was not "
               "trained on. `voxdistill transcribe THIS_FOLDER speech.wav` runs it as it was trained.\n"
               if export.get("pad_step_seconds") else ""))
    window = export["window_seconds"]
    quant = "int8" if export["quantization"].startswith("int8") else "float32"
    voxdistill = (f"```bash\nvoxdistill transcribe THIS_FOLDER speech.wav --runtime ct2 --compute-type {quant}\n```\n\n"
                  "(`voxdistill evaluate` and `pseudo-label` take the same `--runtime ct2 --compute-type`.)")
    if window == 30 and not export.get("pad_step_seconds"):
        return (
            "## How to use\n\n"
            "With faster-whisper:\n\n"
            "```python\nfrom faster_whisper import WhisperModel\n\n"
            f'model = WhisperModel("THIS_FOLDER", device="cpu", compute_type="{quant}")\n'
            'segments, _ = model.transcribe("speech.wav", language="en", beam_size=1, without_timestamps=True)\n'
            'print(" ".join(s.text.strip() for s in segments))\n```\n\n'
            f"or with voxdistill, which decodes exactly as it evaluated the model:\n\n{voxdistill}\n")
    language = '"<|en|>", "<|transcribe|>", ' if export.get("multilingual") else ""
    return (
        "## How to use\n\n"
        + ("This model encodes each clip at its own length. faster-whisper (checked with 1.2.1) pads every "
           "clip's features to 30 s, which it was not trained on" if export.get("pad_step_seconds") else
           f"This model reads {window}-second windows. faster-whisper (checked with 1.2.1) pads every clip's "
           "features to 30 s")
        + ("" if window == 30 else f", which a {window}-second model refuses (CTranslate2: \"Invalid input "
                                   f"features shape\")")
        + f", so run it with voxdistill, which feeds each clip through the model's own feature "
        f"extractor and cuts longer audio into {window}-second chunks:\n\n{voxdistill}\n\n"
        + (f"or with CTranslate2 directly, each clip padded to the next {export['pad_step_seconds']:g} s"
           f"{after_silence(export)} (`pad_to_multiple_of` and `min_trailing_silence` in "
           f"`preprocessor_config.json`, in samples), as the model was trained:\n\n"
           if export.get("pad_step_seconds") else
           "or with CTranslate2 directly, features padded to the window by `preprocessor_config.json`:\n\n")
        +
        "```python\nimport ctranslate2, soundfile\n"
        "from transformers import WhisperFeatureExtractor, WhisperTokenizer\n\n"
        'features = WhisperFeatureExtractor.from_pretrained("THIS_FOLDER")  # pads to the model\'s window\n'
        'tokenizer = WhisperTokenizer.from_pretrained("THIS_FOLDER")\n'
        f'model = ctranslate2.models.Whisper("THIS_FOLDER", device="cpu", compute_type="{quant}")\n'
        f'audio, _ = soundfile.read("speech.wav", dtype="float32")  # 16 kHz mono, at most {window} s\n'
        + ('step, silence = features.pad_to_multiple_of, getattr(features, "min_trailing_silence", 0)\n'
           'padded = min(-(-(len(audio) + silence) // step) * step, features.n_samples)\n'
           'mel = features(audio, sampling_rate=16000, return_tensors="np", padding="max_length",\n'
           '               max_length=padded).input_features\n'
           if export.get("pad_step_seconds") else
           'mel = features(audio, sampling_rate=16000, return_tensors="np").input_features\n')
        +
        f'prompt = tokenizer.convert_tokens_to_ids(["<|startoftranscript|>", {language}"<|notimestamps|>"])\n'
        "result = model.generate(ctranslate2.StorageView.from_array(mel), [prompt], beam_size=1)\n"
        "print(tokenizer.decode(result[0].sequences_ids[0], skip_special_tokens=True))\n```\n")
