"""The ASKD experiment on the demo corpus: the same student, data and step budget trained with the
three recipes of configs/ (ce.yaml: labels only; kd.yaml: constant KD; askd.yaml: decaying KD then
self-distillation), over several seeds; WER on test-clean, test-ood-voice and test-ood-noise for
the teacher and every student, mean and spread over seeds.

    .venv/bin/python benchmarks/askd_experiment.py [--teacher bundled:whisper-tiny.en] [--seeds 0 1] [--steps 150]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from voxdistill.config import load_config
from voxdistill.console import quiet_transformers
from voxdistill.data.corpus import PRESETS, build_corpus
from voxdistill.distill.config import DistillConfig
from voxdistill.distill.trainer import distill
from voxdistill.evaluation.metrics import word_error_rate
from voxdistill.models.loading import load_whisper
from voxdistill.models.student import StudentSpec, build_student, parse_layers, save_student
from voxdistill.paths import cache_dir
from voxdistill.teacher.pseudo_label import PseudoLabelConfig, run_pseudo_label
from voxdistill.transcribe import DecodingOptions, transcribe_manifest

RECIPES = ("ce", "kd", "askd")
TEST_SETS = ("test-clean", "test-ood-voice", "test-ood-noise")
CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_wers(model: str, corpus: Path) -> dict[str, float]:
    whisper = load_whisper(model)
    wers = {}
    for name in TEST_SETS:
        pairs = list(transcribe_manifest(whisper, corpus / f"{name}.jsonl", DecodingOptions(batch_size=8)))
        wers[name] = word_error_rate([u.text for u, _ in pairs], [t for _, t in pairs])
    return wers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", default="bundled:whisper-tiny.en")
    parser.add_argument("--decoder-layers", default="2")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--work", type=Path, default=cache_dir() / "askd-experiment")
    args = parser.parse_args()
    quiet_transformers()
    corpus, work = args.work / "corpus", args.work
    build_corpus(PRESETS["demo"], corpus, seed=0, progress=False)
    run_pseudo_label(PseudoLabelConfig(args.teacher, corpus / "train.jsonl", work / "pseudo"), progress=False)
    student_dir = work / "student"
    if not student_dir.is_dir():
        teacher = load_whisper(args.teacher)
        layers = teacher.model.config.decoder_layers
        spec = StudentSpec(tuple(range(teacher.model.config.encoder_layers)),
                           tuple(parse_layers(args.decoder_layers, layers)))
        student, provenance = build_student(teacher.model, spec)
        save_student(student, teacher.processor, provenance, args.teacher, teacher.fingerprint.digest, student_dir)

    boundary = args.steps * 3 // 4
    results: dict[str, list[dict[str, float]]] = {"teacher": [test_wers(args.teacher, corpus)]}
    for seed in args.seeds:
        for recipe in RECIPES:
            out = work / "runs" / f"{recipe}-seed{seed}"
            overrides = [f"student={student_dir}", f"out={out}", f"seed={seed}",
                         f"data.train_manifest={work / 'pseudo' / 'pseudo_labels.jsonl'}",
                         f"data.dev_manifest={corpus / 'dev.jsonl'}",
                         f"optim.max_steps={args.steps}", "eval.every_steps=0", f"checkpoint.every_steps={args.steps}"]
            if recipe == "askd":
                overrides += [f"loss.kd_decay.decay_steps={boundary}", f"self_distill.start_step={boundary}"]
            config = load_config(DistillConfig, CONFIGS / f"{recipe}.yaml", overrides)
            result = distill(config, progress=False)
            results.setdefault(recipe, []).append(test_wers(str(result.out / "model"), corpus))
            print(f"seed {seed} {recipe}: " + ", ".join(f"{k} {v:.1%}" for k, v in results[recipe][-1].items()), flush=True)
    (work / "results.json").write_text(json.dumps(results, indent=2))

    print(f"\nteacher {args.teacher}; student: its encoder + {args.decoder_layers} decoder layers, "
          f"{args.steps} steps, seeds {args.seeds}; WER mean (min–max over seeds)")
    print(f"{'model':10} " + " ".join(f"{name:>22}" for name in TEST_SETS))
    for model, runs in results.items():
        cells = []
        for name in TEST_SETS:
            values = [r[name] for r in runs]
            spread = f" ({min(values):.1%}–{max(values):.1%})" if len(values) > 1 else ""
            cells.append(f"{statistics.mean(values):.1%}{spread}")
        print(f"{model:10} " + " ".join(f"{c:>22}" for c in cells))


if __name__ == "__main__":
    main()
