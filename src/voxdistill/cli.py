"""The ``voxdistill`` command. Thin: parse arguments, call library functions, print.

Every subcommand maps onto one function ``cmd_<name>(args) -> int``. Errors voxdistill raises on
purpose (``VoxdistillError``) print as one line on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

from voxdistill import __version__
from voxdistill.audio import MIN_SECONDS
from voxdistill.errors import VoxdistillError

EXIT_USAGE = 2


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"warning: {message}", file=sys.stderr)


def cmd_transcribe(args: argparse.Namespace) -> int:
    from voxdistill.audio import load_audio
    from voxdistill.runtime import load_recogniser
    from voxdistill.transcribe import transcribe_audio

    runtime = _runtime(args)
    # Read and validate every file before the model loads: bad input fails in milliseconds.
    audios = [load_audio(path, long_audio=args.long_audio) for path in args.audio]
    options = _decoding(args)
    recogniser = load_recogniser(args.model, runtime)
    texts = transcribe_audio(recogniser, audios, options, progress=len(audios) > options.batch_size)
    if args.json:
        print(json.dumps([{"audio": path, "text": text} for path, text in zip(args.audio, texts)],
                         ensure_ascii=False, indent=2))
    else:
        for path, text in zip(args.audio, texts):
            print(f"{path}\t{text}")
    return 0


def cmd_pseudo_label(args: argparse.Namespace) -> int:
    from voxdistill.teacher.pseudo_label import PseudoLabelConfig, run_pseudo_label

    config = PseudoLabelConfig(
        teacher=args.teacher, manifest=args.manifest, out=args.out, runtime=_runtime(args),
        decoding=_decoding(args), top_k=args.top_k, wer_threshold=args.wer_threshold, filters=label_filters(args),
        shard_size=args.shard_size, max_bad_audio=args.skip_bad_audio, encoder_state_seconds=args.encoder_state_seconds,
    )
    start = time.perf_counter()
    summary = run_pseudo_label(config)
    if summary is None:  # not rank 0 of a multi-process run
        return 0
    elapsed = time.perf_counter() - start
    reasons = ", ".join(f"{reason} {n}" for reason, n in summary.dropped_by.items() if n)
    print(f"{summary.total} utterances, {summary.audio_seconds / 3600:.2f} h of audio: "
          f"{summary.kept} kept, {summary.dropped} dropped{f' ({reasons})' if reasons else ''}, "
          f"{summary.skipped} bad audio skipped")
    print(f"pseudo-labels: {args.out / 'pseudo_labels.jsonl'}; metadata: {summary.metadata_path} "
          f"({elapsed:.0f} s this run)")
    return 0


def cmd_student_init(args: argparse.Namespace) -> int:
    from voxdistill.models.loading import load_whisper
    from voxdistill.models.student import StudentConfigError, parse_layers

    if args.family == "whisper" and args.decoder_layers is None:
        raise StudentConfigError("--decoder-layers: a Whisper student needs decoder layers (a count or indices)")
    if args.family == "ctc":
        if args.decoder_layers is not None or args.d_model is not None or args.ffn_dim is not None:
            raise StudentConfigError("--family ctc: a CTC student keeps the teacher's encoder widths and has no "
                                     "decoder; drop --decoder-layers, --d-model and --ffn-dim")
    elif args.head is not None:
        raise StudentConfigError("--head: only for --family ctc")
    teacher = load_whisper(args.teacher)
    config = teacher.model.config
    encoder_layers = parse_layers(args.encoder_layers, config.encoder_layers, name="--encoder-layers")
    if args.family == "ctc":
        if args.pad_step is not None:
            raise VoxdistillError("--pad-step is for Whisper students; a CTC student reads its whole window")
        return _init_ctc_student(args, teacher, encoder_layers)
    from voxdistill.models.student import StudentSpec, build_student, save_student

    spec = StudentSpec(
        encoder_layers=tuple(encoder_layers),
        decoder_layers=tuple(parse_layers(args.decoder_layers, config.decoder_layers, name="--decoder-layers")),
        d_model=args.d_model, ffn_dim=args.ffn_dim, window_seconds=args.window_seconds,
        pad_step_seconds=args.pad_step,
    )
    student, provenance = build_student(teacher.model, spec)
    save_student(student, teacher.processor, provenance, teacher_source=args.teacher,
                 teacher_fingerprint=teacher.fingerprint.digest, out=args.out)
    _print_student(student, teacher, args.out, provenance)
    return 0


def _init_ctc_student(args: argparse.Namespace, teacher, encoder_layers: list[int]) -> int:
    from voxdistill.models.ctc import build_ctc_student, ctc_provenance, save_ctc_student
    from voxdistill.models.student import window_seconds

    student, feature_extractor = build_ctc_student(
        teacher, encoder_layers, window_seconds=args.window_seconds or window_seconds(teacher.model.config),
        head=args.head or "linear",
        lstm_hidden=args.lstm_hidden, lstm_layers=args.lstm_layers)
    provenance = ctc_provenance(teacher, student, encoder_layers)
    save_ctc_student(student, feature_extractor, args.out, provenance)
    _print_student(student, teacher, args.out, provenance)
    return 0


def _print_student(student, teacher, out: Path, provenance: dict) -> None:
    params = sum(p.numel() for p in student.parameters())
    teacher_params = sum(p.numel() for p in teacher.model.parameters())
    print(f"student: {params / 1e6:.1f}M parameters ({params / teacher_params:.0%} of the teacher's "
          f"{teacher_params / 1e6:.1f}M) -> {out}")
    for key, value in provenance.items():
        print(f"  {key}: {value}")


def cmd_distill(args: argparse.Namespace) -> int:
    from voxdistill.config import load_config
    from voxdistill.distill.config import DistillConfig

    if args.print_config:
        return _print_config(DistillConfig, args)
    from voxdistill.distill.trainer import TrainingInterrupted, distill

    config = load_config(DistillConfig, args.config, args.set)
    try:
        result = distill(config, steps_this_run=args.steps_this_run, allow_config_change=args.allow_config_change)
    except TrainingInterrupted as stop:
        print(f"error: {stop}", file=sys.stderr)
        return 128 + stop.signum
    best = "" if result.state.best_wer is None else \
        f"; best dev WER {result.state.best_wer:.1%} at step {result.state.best_step}"
    print(f"{result.state.step} steps -> {result.last_checkpoint}{best}")
    return 0


def _print_config(cls, args: argparse.Namespace) -> int:
    """Every key of the config ``--config`` and ``--set`` resolve to, defaults filled in, as YAML;
    keys without a default that they leave out are null, and named in a comment at the top."""
    from voxdistill.config import config_yaml, load_config

    missing: list[str] = []
    config = load_config(cls, args.config, args.set, missing=missing)
    if missing:
        print(f"# no default, set them: {', '.join(missing)}")
    print(config_yaml(config), end="")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from voxdistill.evaluation.evaluate import EvalSettings, evaluate, format_table
    from voxdistill.runtime import Runtime

    settings = EvalSettings(
        decoding=_decoding(args), latency_clips=args.latency_clips, warmup_clips=args.warmup, threads=args.threads,
        runtime=_runtime(args), ctc_runtime=Runtime.of(args.ctc_runtime), compile_decoder=args.compile_decoder,
    )
    result = evaluate(args.model, args.manifest, args.out, settings, labels=args.label)
    print(format_table(result))
    if args.card:
        _write_cards(result)
    print(f"\nmetrics: {args.out}; transcripts: {args.out.parent / result['transcripts']}")
    return 0


def _write_cards(result: dict) -> None:
    from voxdistill.export.model_card import write_model_card

    for record in result["models"]:
        if record["role"] == "student":
            print(f"model card: {write_model_card(Path(record['source']), result, record['model'])}")


def cmd_export(args: argparse.Namespace) -> int:
    from voxdistill.evaluation.evaluate import disk_bytes
    from voxdistill.export.exporter import EXPORT_RECORD, export_model

    out = export_model(args.model, args.format, args.out, args.quantization)
    record = json.loads((out / EXPORT_RECORD).read_text())
    size = disk_bytes(out)
    print(f"{args.model} -> {out} ({args.format}, {args.quantization}, {size / 1e6:.1f} MB of weights, "
          f"{record['window_seconds']} s window"
          + (f", each clip padded to the next {record['pad_step_seconds']:g} s)" if record.get("pad_step_seconds")
             else ")"))
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    from voxdistill.models.prune import prune_student

    out, record = prune_student(args.model, args.calibration, args.out, clips=args.clips, keep=args.ffn_keep,
                                encoder_ffn_dim=args.encoder_ffn_dim, decoder_ffn_dim=args.decoder_ffn_dim,
                                batch_size=args.batch_size)
    pruned = record["pruned"]
    widths = ", ".join(f"{side} {pruned[f'{side}_ffn_dim']['before']} -> {pruned[f'{side}_ffn_dim']['after']}"
                       for side in ("encoder", "decoder"))
    params = pruned["parameters"]
    print(f"{args.model} -> {out}: feed-forward neurons per layer {widths}; "
          f"{params['before'] / 1e6:.1f}M -> {params['after'] / 1e6:.1f}M parameters")
    calibration = pruned["calibration"]
    print(f"  importance measured on {calibration['clips']} clips of {args.calibration} "
          f"({calibration['decoder_tokens']} decoder tokens); share of it the kept neurons hold, per layer:")
    for side, shares in pruned["kept_importance"].items():
        print(f"  {side:8} " + " ".join(f"{share:.1%}" for share in shares))
    print(f"recover: voxdistill distill --config configs/prune-recover.yaml --set student={out} --set out=RUN")
    return 0


def cmd_model_info(args: argparse.Namespace) -> int:
    from voxdistill.models.loading import load_whisper

    whisper = load_whisper(args.model)
    config = whisper.model.config
    info = {
        "model": args.model,
        "folder": str(whisper.folder) if whisper.folder else None,
        "parameters": sum(p.numel() for p in whisper.model.parameters()),
        "encoder_layers": config.encoder_layers,
        "decoder_layers": config.decoder_layers,
        "d_model": config.d_model,
        "vocab_size": config.vocab_size,
        "multilingual": whisper.multilingual,
        "fingerprint": whisper.fingerprint.to_dict(),
    }
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for key, value in info.items():
            print(f"{key:15} {value}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    return _pipeline(args, recipes=("askd",))


def cmd_bench(args: argparse.Namespace) -> int:
    return _pipeline(args, recipes=tuple(args.recipes), seeds=None if args.seeds is None else tuple(args.seeds))


def _pipeline(args: argparse.Namespace, recipes: tuple[str, ...], seeds: tuple[int, ...] | None = None) -> int:
    from voxdistill.pipeline import PipelineConfig, run_pipeline

    config = PipelineConfig(out=args.out, teacher=args.teacher, recipes=recipes, preset=args.preset,
                            decoder_layers=args.decoder_layers, window_seconds=args.window_seconds,
                            pad_step_seconds=args.pad_step, steps=args.steps, seed=args.seed, seeds=seeds, latency_clips=args.latency_clips,
                            real_speech=_real_speech_folder(args.real_speech),
                            deployed_runtime=args.deployed_runtime, other_runtimes=tuple(args.also_runtime))
    start = time.perf_counter()
    result = run_pipeline(config)
    print(f"\nreport: {result['report']}  (open it in a browser)")
    print(f"students: {', '.join(r['source'] for r in result['models'][1:])} (Hugging Face folders with a model card)")
    if len(config.distill_seeds()) > 1:
        print(f"WER over seeds: {result['over_seeds_file']}")
    print(f"total {(time.perf_counter() - start) / 60:.1f} min; run the same command again to reuse finished stages")
    return 0


def _real_speech_folder(value: str | None) -> Path | None:
    """--real-speech: a folder of the user's own real speech, or none (the default, also 'none')."""
    return None if value in (None, "none") else Path(value)


def cmd_report(args: argparse.Namespace) -> int:
    from voxdistill.evaluation.report import build_report

    print(f"report: {build_report(args.paths, args.out, title=args.title)}")
    return 0


def cmd_corpus_build(args: argparse.Namespace) -> int:
    from voxdistill.data.corpus import PRESETS, build_corpus, format_summary

    start = time.perf_counter()
    summaries = build_corpus(PRESETS[args.preset], args.out, seed=args.seed, jobs=args.jobs)
    print(format_summary(summaries))
    print(f"\nmanifests in {args.out} ({time.perf_counter() - start:.0f} s)")
    return 0


def cmd_corpus_import(args: argparse.Namespace) -> int:
    from voxdistill.data.importers import import_folder, import_hf_dataset, is_hf_dataset

    if is_hf_dataset(args.source):
        manifest, count = import_hf_dataset(args.source, args.out, split=args.split,
                                            audio_column=args.audio_column,
                                            text_column=args.text_column, domain=args.domain)
    else:
        manifest = args.out / f"{args.name or args.source.resolve().name}.jsonl"
        count = import_folder(args.source, manifest, domain=args.domain)
    print(f"{count} utterances -> {manifest}")
    return 0


def cmd_corpus_check(args: argparse.Namespace) -> int:
    from voxdistill.data.check import check_manifest

    problems = notes = 0
    for finding in check_manifest(args.manifest, max_seconds=args.max_seconds):
        print(finding)
        problems += finding.is_problem
        notes += not finding.is_problem
    print(f"{args.manifest}: {problems} problem(s), {notes} note(s)")
    return 1 if problems else 0


def _decoding_arguments(p: argparse.ArgumentParser, batch: str) -> None:
    """The decoding flags shared by every command that transcribes; ``batch`` says what a batch holds."""
    p.add_argument("--batch-size", type=_at_least(1), default=8, help=f"{batch} (default 8)")
    p.add_argument("--beam-size", type=_at_least(1), default=1, help="beam width; 1 is greedy (default)")
    p.add_argument("--max-new-tokens", type=_at_least(1), default=224, help="tokens per 30 s window (default 224)")
    p.add_argument("--language", default="en", help="language of multilingual models (default en)")


def _runtime_arguments(p: argparse.ArgumentParser) -> None:
    """The runtime flags shared by every command that runs a model to transcribe."""
    p.add_argument("--runtime", choices=["torch", "ct2", "onnx"], default="torch",
                   help="torch: PyTorch (default); ct2: CTranslate2, the runtime of faster-whisper "
                        "(a model that is not a CTranslate2 folder is exported into the cache first); "
                        "onnx: onnxruntime, for CTC students")
    p.add_argument("--compute-type", default=None, metavar="TYPE",
                   help="precision of the runtime: torch runs float32 or int8 (the decoder in dynamic "
                        "int8, the encoder in float32); ct2 runs what this CPU supports (here typically "
                        "int8, int8_float32, int16, float32; default float32). Another "
                        "runtime or compute type is another model: its fingerprint says so")


def _runtime(args: argparse.Namespace):
    from voxdistill.runtime import Runtime

    return Runtime.of(args.runtime, args.compute_type)


def _decoding(args: argparse.Namespace):
    from voxdistill.transcribe import DecodingOptions

    return DecodingOptions(num_beams=args.beam_size, max_new_tokens=args.max_new_tokens,
                           language=args.language, batch_size=args.batch_size)


def _at_least(minimum: int | float, kind: type = int):
    """An argparse type: a number of ``kind`` no smaller than ``minimum``. argparse prefixes the
    message with the option's name and exits with status 2, before anything is loaded."""
    wanted = f"give a {'whole number' if kind is int else 'number'} of {minimum} or more"

    def number(value: str) -> int | float:
        try:
            parsed = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"got {value!r}; {wanted}") from None
        if not parsed >= minimum:  # also refuses nan
            raise argparse.ArgumentTypeError(f"got {value}; {wanted}")
        return parsed
    return number


def filter_arguments(parser: argparse.ArgumentParser) -> None:
    """The reference-free pseudo-label filter flags (`teacher.filters.LabelFilters`), also read by
    benchmarks/label_filters.py."""
    group = parser.add_argument_group(
        "filters for utterances without a reference",
        "Whisper's own rules and defaults; 'none' turns one off. Utterances with a reference are judged by "
        "--wer-threshold instead. The filters read values every record keeps, so running the same command "
        "again with other thresholds relabels nothing.")
    group.add_argument("--compression-ratio-threshold", type=_or_none(float), default=2.4, metavar="R",
                       help="drop a transcript whose text zlib compresses by more than R: a repetition loop "
                            "(default 2.4)")
    group.add_argument("--logprob-threshold", type=_or_none(float), default=-1.0, metavar="L",
                       help="drop a transcript whose tokens' mean log-probability under the teacher is below L "
                            "(default -1.0)")
    group.add_argument("--no-speech-threshold", type=_or_none(float), default=0.6, metavar="P",
                       help="drop as non-speech a clip whose no-speech probability is above P, unless its mean "
                            "log-probability is above --logprob-threshold (default 0.6)")
    group.add_argument("--no-speech-alone", action="store_true",
                       help="apply --no-speech-threshold whatever the log-probability: also drops a transcript the "
                            "teacher is sure of in silence (tiny.en's \"you\")")
    group.add_argument("--repeated-ngram-threshold", type=_or_none(int), default=3, metavar="N",
                       help="drop a transcript that repeats word 3-grams more than N times: a loop too short "
                            "for the compression ratio (default 3)")
    group.add_argument("--keep-empty", action="store_true", help="keep transcripts without words (dropped by default)")


def label_filters(args: argparse.Namespace):
    from voxdistill.teacher.filters import LabelFilters

    return LabelFilters(
        compression_ratio_threshold=args.compression_ratio_threshold, logprob_threshold=args.logprob_threshold,
        no_speech_threshold=args.no_speech_threshold, no_speech_alone=args.no_speech_alone,
        repeated_ngram_threshold=args.repeated_ngram_threshold, drop_empty=not args.keep_empty)


def _or_none(kind: type):
    """An argparse type: a number of ``kind`` (its range checked by the config it goes into), or 'none'."""
    def parse(value: str) -> int | float | None:
        if value == "none":
            return None
        try:
            return kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"got {value!r}; give a number, or 'none' to turn it off") from None
    return parse


def _pad_step(value: str) -> float | None:
    """--pad-step: seconds, a whole number of encoder positions (checked here, before any work), or 'none'."""
    from voxdistill.models.student import StudentConfigError, pad_step_samples

    if value == "none":
        return None
    try:
        pad_step_samples(float(value))
    except (ValueError, StudentConfigError) as err:
        reason = err if isinstance(err, StudentConfigError) else "not a number"
        raise argparse.ArgumentTypeError(f"{value!r}: {reason}; or 'none' to pad to the window") from None
    return float(value)


def _window(value: str) -> int | str | None:
    if value in ("auto", "teacher"):
        return None if value == "teacher" else value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: give whole seconds, 'auto' or 'teacher'") from None


def _pipeline_parser(sub, name: str, func, help: str, description: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help, description=description)
    p.set_defaults(func=func)
    default_out = f"{name}-out"
    p.add_argument("--out", type=Path, default=Path(default_out), help=f"output folder (default {default_out})")
    p.add_argument("--teacher", default="bundled:whisper-tiny.en", help=f"{MODEL_HELP} (default bundled:whisper-tiny.en)")
    p.add_argument("--preset", choices=["demo", "full"], default="demo", help="corpus size (default demo)")
    p.add_argument("--decoder-layers", default="4", metavar="N|I,J,...",
                   help="student decoder layers (default 4, all of tiny.en's: closest to the teacher on real "
                        "speech; fewer are maximally spaced, first and last kept); the student keeps the "
                        "teacher's encoder, frozen")
    p.add_argument("--window-seconds", type=_window, default="auto", metavar="S|auto|teacher",
                   help="the student's audio window: seconds, 'auto' (default: the longest training "
                        "utterance, rounded up) or 'teacher' (the teacher's 30 s)")
    p.add_argument("--pad-step", type=_pad_step, default=1.0, metavar="S|none",
                   help="the student encodes each clip at its own length, zero-padded to the next multiple of S "
                        "seconds (default 1); 'none' pads every clip to the whole window")
    p.add_argument("--steps", type=int, default=300, help="optimizer steps per recipe (default 300)")
    p.add_argument("--seed", type=int, default=0, help="corpus, data order and initialisation seed (default 0)")
    p.add_argument("--latency-clips", type=int, default=20, metavar="N",
                   help="clips per test set timed at batch 1 (default 20)")
    p.add_argument("--deployed-runtime", default="ct2:int8", metavar="BACKEND:TYPE",
                   help="the runtime the student ships in, where teacher and students are evaluated and "
                        "compared (default ct2:int8, CTranslate2 as faster-whisper runs it; torch:float32 "
                        "for PyTorch)")
    p.add_argument("--also-runtime", action="append", default=[], metavar="BACKEND:TYPE",
                   help="evaluate the same models in this runtime too, side by side (repeatable; e.g. "
                        "torch:float32, PyTorch as it trains)")
    p.add_argument("--real-speech", default=None, metavar="DIR|none",
                   help="a folder of your own real speech with .txt transcripts beside each clip, scored as "
                        "one more set, real-speech, beside the shipped real-speech test sets (default: none)")
    return p


MODEL_HELP = ("a local Hugging Face or CTranslate2 Whisper folder, a Hugging Face id (needs "
              "internet), or bundled:whisper-tiny.en / bundled:whisper-base")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voxdistill",
        description="Distil a Whisper-class teacher into a small, fast student, and prove it.",
    )
    parser.add_argument("--version", action="version", version=f"voxdistill {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                help="what to do; voxdistill COMMAND --help explains each")

    p = sub.add_parser("transcribe", help="transcribe audio files with a Whisper model",
                       description="Print one line per file: the path, a tab, the transcript.")
    p.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    p.add_argument("audio", metavar="AUDIO", nargs="+",
                   help=f"audio files (WAV, FLAC, OGG, ...; other rates are resampled to 16 kHz, "
                        f"stereo is downmixed, both with a warning; clips under {MIN_SECONDS:g} s are refused)")
    p.add_argument("--json", action="store_true", help='print [{"audio": path, "text": ...}] instead')
    _decoding_arguments(p, batch="30 s windows per forward pass")
    _runtime_arguments(p)
    p.add_argument("--long-audio", choices=["refuse", "split"], default="refuse",
                   help="audio over 30 s: refuse it (default) or transcribe it whole, in overlapping windows of the "
                        "model's length cut at pauses and merged where their words agree")
    p.set_defaults(func=cmd_transcribe)

    _pipeline_parser(
        sub, "demo", cmd_demo,
        "the whole pipeline on a bundled teacher, the shipped real speech and the demo corpus (about 21 min on "
        "2 CPU cores with AVX-512; it first estimates the time on yours)",
        "Synthesise the demo corpus, lay out the shipped real speech (an unlabelled training pool, real "
        "dev, real test sets by speakers who never train, packed clips and pieces of the pool), "
        "pseudo-label the training mix with the teacher, build a student from the teacher's layers, "
        "distil it with the ASKD recipe (configs/askd.yaml), evaluate teacher and student side by side in "
        "the deployed runtime (real speech first), write the student's model card and an HTML report. "
        "Run again to reuse finished stages.")
    p = _pipeline_parser(
        sub, "bench", cmd_bench,
        "teacher vs CE-only, KD and ASKD students and the teacher fine-tuned on the same labels, over seeds",
        "The demo pipeline with several recipes of configs/ trained from the same student on the "
        "same pseudo-labels for the same number of steps, evaluated together, with one report. The "
        "teacher-ft recipe is the baseline that makes the comparison honest: the teacher itself "
        "(a full copy, teacher-student/ under --out) fine-tuned on the same labels for the same steps. With "
        "--seeds, every recipe is trained once per seed and each set gets a table of WER mean ± "
        "standard deviation over seeds (also bench.json in the deployed runtime's evaluation folder). Run again to reuse finished stages.")
    p.add_argument("--recipes", nargs="+", default=["ce", "kd", "askd", "teacher-ft"], metavar="RECIPE",
                   help="recipes of configs/ to compare (default: ce kd askd teacher-ft)")
    p.add_argument("--seeds", type=int, nargs="+", default=None, metavar="K",
                   help="distillation seeds (data order): every recipe is trained once per seed, into "
                        "runs/RECIPE-seedK/ under --out (the run of --seed keeps runs/RECIPE/, the demo's), "
                        "and each set gets WER mean ± standard deviation over them (bench.json beside the evaluation). "
                        "The corpus seed does not change: corpus, pseudo-labels and student stay those "
                        "of --seed, so the spread is training noise on fixed data (default: --seed alone)")

    p = sub.add_parser(
        "report", help="one self-contained HTML page from distillation runs and evaluations",
        description="PATH is a distillation run folder (log.jsonl), an evaluation JSON (from "
                    "voxdistill evaluate), or a folder searched for both (e.g. a demo output folder). "
                    "The page has training curves, kd weight and phase, dev WER, the teacher-vs-"
                    "students table per domain, speed and size bars, and transcripts that differ.")
    p.add_argument("paths", type=Path, nargs="+", metavar="PATH",
                   help="run folders, evaluation JSON files, or folders searched for both (repeatable)")
    p.add_argument("--out", type=Path, required=True, help="HTML file to write")
    p.add_argument("--title", default="voxdistill report", help="page title")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("corpus", help="build, import and check speech corpora",
                       description="Build the built-in synthetic corpus, import your own audio, "
                                   "or check a manifest.")
    corpus_sub = p.add_subparsers(dest="corpus_command", required=True, metavar="ACTION",
                                  help="what to do with a corpus")
    build = corpus_sub.add_parser(
        "build", help="synthesise the built-in multi-domain corpus",
        description="Synthesise sentences with espeak-ng, flite, festival and Piper voices, degrade "
                    "them into acoustic domains, and write train/dev/test manifests. Voices and "
                    "degradations of the test-ood-* splits never occur in train/dev. A second "
                    "build reuses every file that is still wanted.")
    build.add_argument("--preset", choices=["demo", "full"], default="demo",
                       help="demo: minutes of audio for this CPU; full: tens of hours for GPUs")
    build.add_argument("--out", type=Path, required=True, help="corpus folder")
    build.add_argument("--seed", type=int, default=0, help="same seed, same corpus (default 0)")
    build.add_argument("--jobs", type=_at_least(1), default=None,
                       help="parallel synthesis processes (default: CPU count)")
    build.set_defaults(func=cmd_corpus_build)

    imp = corpus_sub.add_parser(
        "import", help="make a manifest from a folder of audio or a saved datasets dataset",
        description="SOURCE is a folder of audio files (a .txt file with the same name holds the "
                    "transcript) or a Hugging Face datasets dataset saved with save_to_disk.")
    imp.add_argument("source", type=Path, metavar="SOURCE",
                     help="a folder of audio files (with .txt transcripts beside them), or a folder "
                          "written by datasets' save_to_disk")
    imp.add_argument("--out", type=Path, required=True, help="folder for the manifest (and copied dataset audio)")
    imp.add_argument("--name", help="manifest name for a folder import (default: the folder's name)")
    imp.add_argument("--domain", help="domain label to give every utterance")
    imp.add_argument("--split", help="dataset split to import (datasets only)")
    imp.add_argument("--audio-column", default="audio", help="datasets only (default audio)")
    imp.add_argument("--text-column", help="datasets only (default: first of text, sentence, transcription, ...)")
    imp.set_defaults(func=cmd_corpus_import)

    check = corpus_sub.add_parser(
        "check", help="validate every line and audio file of a manifest",
        description="Report every problem (no utterances, bad line, duplicate id, missing/empty/"
                    "corrupt/truncated/NaN audio, clips too short to hold speech, wrong duration) "
                    "with its line and id; exit 1 if there is any.")
    check.add_argument("manifest", type=Path, metavar="MANIFEST", help="JSON Lines manifest to check")
    check.add_argument("--max-seconds", type=_at_least(MIN_SECONDS, float), default=30.0,
                       help="longest acceptable utterance (default 30, Whisper's window)")
    check.set_defaults(func=cmd_corpus_check)

    p = sub.add_parser(
        "pseudo-label", help="transcribe a manifest with the teacher, keeping its top-k distributions",
        description="The teacher transcribes every utterance (batched, sorted by length), keeps the "
                    "top-k log-probabilities along each transcript, and along each reference "
                    "transcript where the manifest has one, for offline distillation, and records its "
                    "fingerprint. Work is committed in shards: run the same command "
                    "again to resume. Runs on several processes under accelerate launch or torchrun.")
    p.add_argument("--teacher", required=True, help=MODEL_HELP)
    p.add_argument("--manifest", type=Path, required=True, help="JSON Lines manifest of the audio to label")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    _decoding_arguments(p, batch="utterances per forward pass")
    _runtime_arguments(p)
    p.add_argument("--top-k", type=_at_least(0), default=16,
                   help="teacher log-probabilities kept per output token for offline KD; 0 keeps none (default 16)")
    p.add_argument("--wer-threshold", type=_at_least(0.0, float), default=None,
                   help="where the manifest has reference text, drop utterances whose pseudo-label WER "
                        "exceeds this (e.g. 0.3); the counts are reported")
    filter_arguments(p)
    p.add_argument("--shard-size", type=_at_least(1), default=64, help="utterances committed together (default 64)")
    p.add_argument("--encoder-state-seconds", type=_at_least(0), default=0, metavar="S",
                   help="also cache the teacher's encoder states over the first S seconds of its window, "
                        "the target of encoder-state KD (loss.encoder_kd_weight) for a student whose "
                        "window is S seconds; float16, about 38 KB per second per utterance for tiny.en "
                        "(default 0: none)")
    p.add_argument("--skip-bad-audio", type=_at_least(0), default=0, metavar="N",
                   help="skip up to N unreadable audio files, logged by id (default 0: stop at the first)")
    p.set_defaults(func=cmd_pseudo_label)

    p = sub.add_parser("student", help="build students from a teacher's layers",
                       description="Build a student Whisper from a teacher's own layers.")
    student_sub = p.add_subparsers(dest="student_command", required=True, metavar="ACTION",
                                   help="what to do")
    init = student_sub.add_parser(
        "init", help="copy a subset of the teacher's layers (and optionally narrow them) into a student",
        description="Copy the teacher's embeddings, front end and a subset of its encoder and "
                    "decoder layers into a new Hugging Face Whisper folder that records where "
                    "every layer came from (or, with --family ctc, its front end and encoder layers "
                    "under a CTC head). N picks N maximally spaced layers (first and last "
                    "always kept); 0,5 picks layers 0 and 5.")
    init.add_argument("--teacher", required=True, help=MODEL_HELP)
    init.add_argument("--family", choices=("whisper", "ctc"), default="whisper",
                      help="whisper (default): an encoder-decoder copy of the teacher's layers; ctc: the "
                           "teacher's encoder layers and a CTC head over characters, one forward pass per clip")
    init.add_argument("--encoder-layers", required=True, metavar="N|I,J,...",
                      help="encoder layers: a count or explicit 0-based indices")
    init.add_argument("--decoder-layers", default=None, metavar="N|I,J,...",
                      help="decoder layers: a count or explicit 0-based indices (Whisper students)")
    init.add_argument("--head", choices=("linear", "lstm"), default=None,
                      help="CTC students: linear (a DNN head) or lstm (a bidirectional LSTM, the RNN student); "
                           "default linear")
    init.add_argument("--lstm-hidden", type=_at_least(1), default=256, metavar="H",
                      help="CTC lstm head: hidden units per direction (default 256)")
    init.add_argument("--lstm-layers", type=_at_least(1), default=1, metavar="L",
                      help="CTC lstm head: stacked layers (default 1)")
    init.add_argument("--d-model", type=_at_least(1), default=None,
                      help="narrower residual width, initialised from the teacher's largest dimensions")
    init.add_argument("--ffn-dim", type=_at_least(1), default=None,
                      help="narrower feed-forward width, initialised from the teacher's most important neurons")
    init.add_argument("--window-seconds", type=_at_least(1), default=None, metavar="S",
                      help="seconds of audio the student's encoder sees at once (default: the teacher's 30); "
                           "clips are zero-padded to it, so a window that just fits your clips saves encoder "
                           "time; longer audio is cut into windows")
    init.add_argument("--pad-step", type=_pad_step, default=None, metavar="S",
                      help="Whisper students: encode each clip at its own length, zero-padded to the next multiple "
                           "of S seconds (at most the window; a multiple of 0.02), instead of to the whole window: "
                           "a 4 s clip costs 4 s of encoder work. Distillation trains it on exactly that padding")
    init.add_argument("--out", type=Path, required=True, help="student folder (must not exist or be empty)")
    init.set_defaults(func=cmd_student_init)

    p = sub.add_parser(
        "distill", help="train a student with cross-entropy and KL to the teacher",
        description="Train a student from a YAML config (see configs/). Every key, with its default: "
                    "voxdistill distill --print-config. Resumes from the run folder's latest "
                    "checkpoint, with the settings the run was started with; SIGINT/SIGTERM save a "
                    "checkpoint and stop. Runs on several processes under accelerate launch.")
    p.add_argument("--config", type=Path, default=None,
                   help="YAML run config; required to train unless --set gives every key without a "
                        "default (student, out, data.train_manifest)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set optim.lr=1e-4 (repeatable)")
    p.add_argument("--steps-this-run", type=int, default=None, metavar="N",
                   help="stop after N steps with a checkpoint; the same command continues the run")
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved config (every key; defaults, --config and --set applied) as "
                        "YAML and exit without training")
    p.add_argument("--allow-config-change", action="store_true",
                   help="resume a run folder with settings other than those it was run with (otherwise "
                        "refused, naming the keys); the change and its step are recorded in run.json")
    p.set_defaults(func=cmd_distill)

    p = sub.add_parser(
        "evaluate", help="score teacher and students side by side: WER/CER per domain, speed, size",
        description="Transcribe every manifest with every model (identical decoding settings), score "
                    "WER and CER after the English normaliser per set and per domain, count "
                    "hallucination signals (insertion rate, transcripts that repeat a word 3-gram), "
                    "and time the models in this one process, interleaved, after warm-up: latency "
                    "at batch 1 over the first clips of each set, throughput at --batch-size. The "
                    "first model is the reference of the ratios (give the teacher first). Writes "
                    "--out (JSON) and transcripts.jsonl beside it, and prints the tables.")
    p.add_argument("--model", action="append", required=True, metavar="MODEL",
                   help=f"{MODEL_HELP} (repeatable; the first is the reference)")
    p.add_argument("--label", action="append", default=None, metavar="NAME",
                   help="a name per --model, in order (default: bundled name, run name, or folder name)")
    # extend: `--manifest a b` and `--manifest a --manifest b` both give both (append would nest,
    # and plain nargs would keep only the last flag's manifests).
    p.add_argument("--manifest", type=Path, nargs="+", action="extend", required=True, metavar="MANIFEST",
                   help="JSON Lines manifests with reference text (repeatable); each is a set named after its file")
    p.add_argument("--out", type=Path, required=True, help="metrics JSON file to write")
    _decoding_arguments(p, batch="utterances per forward pass for accuracy and throughput")
    _runtime_arguments(p)
    p.add_argument("--latency-clips", type=_at_least(0), default=20, metavar="N",
                   help="clips per set timed one at a time for latency p50/p95 (default 20; 0 skips)")
    p.add_argument("--warmup", type=_at_least(0), default=2, metavar="N",
                   help="untimed clips per model before timing (default 2)")
    p.add_argument("--threads", type=_at_least(1), default=None,
                   help="threads of the runtime, PyTorch's or CTranslate2's (default: torch's default; reported)")
    p.add_argument("--compile-decoder", action="store_true",
                   help="torch runtime: greedy decoding calls each model's decoder through torch.compile (same "
                        "weights and tokens, less per-step overhead; compiled during the untimed warm-up, tens of "
                        "seconds a model on a CPU)")
    p.add_argument("--ctc-runtime", choices=["torch", "onnx"], default="torch",
                   help="where CTC students run (--runtime applies to Whisper models): torch (default), or "
                        "onnx, onnxruntime on their ONNX export (made into the cache when needed)")
    p.add_argument("--card", action="store_true",
                   help="write a model card (README.md) with these results into every student folder")
    p.set_defaults(func=cmd_evaluate)

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
    p.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    p.add_argument("--format", required=True, choices=["hf", "ct2", "onnx"],
                   help="hf: Hugging Face folder; ct2: CTranslate2 folder (faster-whisper's format); "
                        "onnx: a CTC student's ONNX folder, run by onnxruntime")
    p.add_argument("--quantization", default="float32", choices=["int8", "int8_float32", "float16", "float32"],
                   help="weights of a ct2 folder (default float32); int8 is smaller and faster but can cost "
                        "a fragile student accuracy: evaluate it with --runtime ct2 --compute-type int8")
    p.add_argument("--out", type=Path, required=True, help="output folder (must not exist or be empty)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "prune", help="remove a trained student's least important feed-forward neurons (structured pruning)",
        description="Remove from every encoder and decoder layer of MODEL the feed-forward neurons that "
                    "matter least, measured on calibration audio: the model runs teacher-forced along its "
                    "transcripts and neuron j scores mean |activation j| x ||its fc2 column|| (how much "
                    "the layer's output changes without it). Every layer of a stack keeps the same number "
                    "(Whisper's config has one width per stack), its best in their original order, so the "
                    "result is a smaller dense Whisper that runs faster in PyTorch and CTranslate2 alike, "
                    "saved as a student folder with a record of the pruning in student.json. Attention "
                    "heads are not pruned: Whisper has one head count per stack and heads d_model/heads "
                    "wide, so transformers and CTranslate2 cannot load a model with heads removed. The "
                    "feed-forward blocks hold two thirds of an encoder layer's weights and half of a "
                    "decoder layer's, so the saving is mostly the encoder's: each decoded token also pays "
                    "for the vocabulary projection and the decoding loop, which pruning leaves as they "
                    "are (benchmarks/prune.py measures it). Afterwards, recover what pruning cost with a "
                    "short distillation run: voxdistill distill --config configs/prune-recover.yaml "
                    "--set student=OUT.")
    p.add_argument("model", metavar="MODEL", help=f"the model to prune, e.g. a trained student RUN/model; {MODEL_HELP}")
    p.add_argument("--calibration", type=Path, required=True, metavar="MANIFEST",
                   help="JSON Lines manifest of clips that fit the model's window, with transcripts; a "
                        "pseudo-label manifest gives its reference where it has one, else the teacher's "
                        "transcript (as training does)")
    p.add_argument("--clips", type=_at_least(1), default=64, metavar="N",
                   help="calibration clips, spread evenly over the manifest (default 64)")
    p.add_argument("--ffn-keep", type=float, default=None, metavar="F",
                   help="fraction of every layer's feed-forward neurons to keep, above 0 and at most 1 (e.g. 0.5)")
    p.add_argument("--encoder-ffn-dim", type=int, default=None, metavar="N",
                   help="instead of --ffn-keep: neurons kept per encoder layer (default: all)")
    p.add_argument("--decoder-ffn-dim", type=int, default=None, metavar="N",
                   help="instead of --ffn-keep: neurons kept per decoder layer (default: all)")
    p.add_argument("--batch-size", type=_at_least(1), default=8, help="clips per forward pass (default 8)")
    p.add_argument("--out", type=Path, required=True, help="output folder (must not exist or be empty)")
    p.set_defaults(func=cmd_prune)

    p = sub.add_parser("model", help="inspect models",
                       description="Inspect a model: size, shape and teacher fingerprint.")
    model_sub = p.add_subparsers(dest="model_command", required=True, metavar="ACTION", help="what to do")
    info = model_sub.add_parser("info", help="print size, shape and fingerprint of a model",
                                description="Load a model (converting a bundled one on first use) "
                                            "and print its size, shape and fingerprint.")
    info.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=cmd_model_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from voxdistill.audio import AudioConversionWarning
    from voxdistill.console import quiet_transformers

    quiet_transformers()
    with warnings.catch_warnings():
        # Every file that is converted on load is reported, even when many share a call site.
        warnings.simplefilter("always", AudioConversionWarning)
        warnings.showwarning = _show_warning
        try:
            return args.func(args)
        except VoxdistillError as err:
            print(f"error: {err}", file=sys.stderr)
            return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
