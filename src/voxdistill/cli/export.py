"""voxdistill export: a model as a Hugging Face, CTranslate2 or ONNX folder for deployment."""

from __future__ import annotations

import argparse
import json

from voxdistill.cli.options import model_argument, new_folder_argument


def register(sub) -> None:
    p = sub.add_parser(
        "export", help="write a model as a Hugging Face or CTranslate2 folder for deployment",
        description="Export MODEL as a Hugging Face Whisper folder (float32 safetensors with "
                    "preprocessor_config.json) or a CTranslate2 folder made by the ctranslate2 package's "
                    "converter (model.bin at --quantization, tokenizer, preprocessor_config.json). Both get "
                    "the model card (README.md, saying how to run the folder), the source's student.json, "
                    "and voxdistill-export.json. A CTranslate2 folder of a 30 s-window model runs in "
                    "faster-whisper; one with a shorter window runs in voxdistill's ct2 runtime "
                    "(voxdistill transcribe DIR ... --runtime ct2) or in CTranslate2 directly, not in "
                    "faster-whisper, which pads every clip to 30 s.")
    model_argument(p)
    p.add_argument("--format", required=True, choices=["hf", "ct2", "onnx"],
                   help="hf: Hugging Face folder; ct2: CTranslate2 folder (faster-whisper's format); "
                        "onnx: a CTC student's ONNX folder, run by onnxruntime")
    p.add_argument("--quantization", default="float32", choices=["int8", "int8_float32", "float16", "float32"],
                   help="weights of a ct2 folder (default float32); int8 is smaller and faster but can cost "
                        "a fragile student accuracy: evaluate it with --runtime ct2 --compute-type int8")
    new_folder_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from voxdistill.evaluation.evaluate import disk_bytes
    from voxdistill.export.exporter import export_model
    from voxdistill.formats import EXPORT_RECORD
    from voxdistill.models.student import after_silence

    out = export_model(args.model, args.format, args.out, args.quantization)
    record = json.loads((out / EXPORT_RECORD).read_text())
    padding = (f", each clip padded to the next {record['pad_step_seconds']:g} s{after_silence(record)}"
               if record.get("pad_step_seconds") else "")
    print(f"{args.model} -> {out} ({args.format}, {args.quantization}, {disk_bytes(out) / 1e6:.1f} MB of weights, "
          f"{record['window_seconds']} s window{padding})")
    return 0
