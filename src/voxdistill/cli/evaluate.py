"""voxdistill evaluate: teacher and students side by side, accuracy per set and domain, speed, size."""

from __future__ import annotations

import argparse
from pathlib import Path

from voxdistill.cli.options import (MODEL_HELP, at_least, check_arguments, decoding, decoding_arguments, runtime,
                                    runtime_arguments)


def register(sub) -> None:
    p = sub.add_parser(
        "evaluate", help="score teacher and students side by side: WER/CER per domain, speed, size",
        description="Transcribe every manifest with every model (identical decoding settings), score "
                    "WER and CER after the English normaliser per set and per domain, count "
                    "hallucination signals (insertion rate, transcripts that repeat a word 3-gram), "
                    "and time the models in this one process, interleaved, after warm-up: latency "
                    "at batch 1 over the first clips of each set, throughput at --batch-size. The "
                    "first model is the reference of the ratios (give the teacher first). Writes "
                    "--out (JSON) and its transcripts beside it (metrics.json: metrics.transcripts.jsonl), "
                    "and prints the tables. Two runs writing the same --out at once are refused.")
    p.add_argument("--model", action="append", required=True, metavar="MODEL",
                   help=f"{MODEL_HELP} (repeatable; the first is the reference)")
    p.add_argument("--label", action="append", default=None, metavar="NAME",
                   help="a name per --model, in order (default: bundled name, run name, or folder name)")
    # extend: `--manifest a b` and `--manifest a --manifest b` both give both (append would nest,
    # and plain nargs would keep only the last flag's manifests).
    p.add_argument("--manifest", type=Path, nargs="+", action="extend", required=True, metavar="MANIFEST",
                   help="JSON Lines manifests with reference text (repeatable); each is a set named after its file")
    p.add_argument("--out", type=Path, required=True, help="metrics JSON file to write")
    decoding_arguments(p, batch="utterances per forward pass for accuracy and throughput")
    check_arguments(p)
    runtime_arguments(p)
    p.add_argument("--latency-clips", type=at_least(0), default=20, metavar="N",
                   help="clips per set timed one at a time for latency p50/p95 (default 20; 0 skips)")
    p.add_argument("--warmup", type=at_least(0), default=2, metavar="N",
                   help="untimed clips per model before timing (default 2)")
    p.add_argument("--threads", type=at_least(1), default=None,
                   help="threads of the runtime, PyTorch's or CTranslate2's (default: torch's default; reported)")
    p.add_argument("--latency-threads", type=at_least(1), nargs="+", default=(), metavar="N",
                   help="time batch-1 latency at each of these thread counts, every model at each (CTranslate2 and "
                        "onnxruntime models are loaded once per count); each model's latency is then the one at its "
                        "fastest count, and the speed-up at every count is printed too (default: --threads alone)")
    p.add_argument("--compile-decoder", action="store_true",
                   help="torch runtime: greedy decoding calls each model's decoder through torch.compile (same "
                        "weights and tokens, less per-step overhead; compiled during the untimed warm-up, tens of "
                        "seconds a model on a CPU)")
    p.add_argument("--ctc-runtime", choices=["torch", "onnx"], default="torch",
                   help="where CTC students run (--runtime applies to Whisper models): torch (default), or "
                        "onnx, onnxruntime on their ONNX export (made into the cache when needed)")
    p.add_argument("--card", action="store_true",
                   help="write a model card (README.md) with these results into every student folder (each "
                        "checked to be writable before the evaluation starts)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from voxdistill.evaluation.evaluate import EvalSettings, evaluate, format_table
    from voxdistill.runtime import Runtime

    settings = EvalSettings(
        decoding=decoding(args), latency_clips=args.latency_clips, warmup_clips=args.warmup, threads=args.threads,
        latency_threads=tuple(args.latency_threads), runtime=runtime(args), ctc_runtime=Runtime.of(args.ctc_runtime), compile_decoder=args.compile_decoder,
    )
    if args.card:
        from voxdistill.export.model_card import check_student_cards

        check_student_cards(args.model)
    result = evaluate(args.model, args.manifest, args.out, settings, labels=args.label)
    print(format_table(result))
    if args.card:
        from voxdistill.export.model_card import write_student_cards

        for card in write_student_cards(result):
            print(f"model card: {card}")
    print(f"\nmetrics: {args.out}; transcripts: {args.out.parent / result['transcripts']}")
    return 0
