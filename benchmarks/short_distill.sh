#!/usr/bin/env bash
# A short distillation on the demo corpus, end to end through the command line: the bundled base
# teacher pseudo-labels the train split, a student keeps its 6 encoder layers and 2 of its 6
# decoder layers, trains 100 steps of offline KD with the encoder frozen, and dev WER is printed
# for the teacher, the fresh student (step 0) and the distilled student.
#
#   bash benchmarks/short_distill.sh [WORK_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/voxdistill/short-distill}
vd=.venv/bin/voxdistill
teacher=bundled:whisper-base

$vd corpus build --preset demo --out "$work/corpus"
$vd pseudo-label --teacher $teacher --manifest "$work/corpus/train.jsonl" --out "$work/pseudo"
[ -d "$work/student" ] || $vd student init --teacher $teacher --encoder-layers 6 --decoder-layers 2 --out "$work/student"
$vd distill --config configs/kd.yaml \
  --set student="$work/student" --set out="$work/run" \
  --set data.train_manifest="$work/pseudo/pseudo_labels.jsonl" --set data.dev_manifest="$work/corpus/dev.jsonl" \
  --set optim.max_steps=100 --set eval.every_steps=100 --set checkpoint.every_steps=50
.venv/bin/python - "$work" "$teacher" <<'PY'
import json, sys
from pathlib import Path
from voxdistill.console import quiet_transformers
from voxdistill.evaluation.metrics import word_error_rate
from voxdistill.models.loading import load_whisper
from voxdistill.transcribe import transcribe_manifest

quiet_transformers()
work, teacher = Path(sys.argv[1]), sys.argv[2]
pairs = list(transcribe_manifest(load_whisper(teacher), work / "corpus" / "dev.jsonl"))
teacher_wer = word_error_rate([u.text for u, _ in pairs], [t for _, t in pairs])
log = [json.loads(line) for line in (work / "run" / "log.jsonl").read_text().splitlines()]
wers = {r["step"]: r["dev_wer"] for r in log if "dev_wer" in r}
print(f"dev WER: teacher {teacher_wer:.1%}, fresh student (step 0) {wers[0]:.1%}, "
      f"after {max(wers)} steps {wers[max(wers)]:.1%}")
PY
