"""What several commands share: argument types, and the option groups written once here and added
by every command that takes them, each with the function that turns its values into the library's
settings."""

from __future__ import annotations

import argparse
from pathlib import Path

MODEL_HELP = ("a local Hugging Face or CTranslate2 Whisper folder, a Hugging Face id (needs "
              "internet), or bundled:whisper-tiny.en / bundled:whisper-base")


# -- argument types: a bad value stops argparse with the option's name and status 2, before any work ---

def at_least(minimum: int | float, kind: type = int):
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


def or_none(kind: type):
    """An argparse type: a number of ``kind`` (its range checked by the config it goes into), or 'none'."""
    def parse(value: str) -> int | float | None:
        if value == "none":
            return None
        try:
            return kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"got {value!r}; give a number, or 'none' to turn it off") from None
    return parse


def pad_step(value: str) -> float | None:
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


def trailing_silence(value: str) -> float:
    """--trailing-silence: seconds of zeros after each clip, 0 or more (checked here, before any work)."""
    from voxdistill.models.student import StudentConfigError, trailing_samples

    try:
        trailing_samples(float(value), pad_step_seconds=1.0)
    except (ValueError, StudentConfigError) as err:
        reason = err if isinstance(err, StudentConfigError) else "not a number"
        raise argparse.ArgumentTypeError(f"{value!r}: {reason}") from None
    return float(value)


def window(value: str) -> int | str | None:
    """--window-seconds of the pipeline: whole seconds, 'auto', or 'teacher' (None: the teacher's window)."""
    if value in ("auto", "teacher"):
        return None if value == "teacher" else value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: give whole seconds, 'auto' or 'teacher'") from None


# -- parsers and arguments several commands take ---------------------------------------------------

def command_group(sub, name: str, help: str, description: str, actions_help: str = "what to do"):
    """The parser of a command whose actions are subcommands (voxdistill NAME ACTION); returns the
    subparsers its actions are added to."""
    p = sub.add_parser(name, help=help, description=description)
    return p.add_subparsers(dest=f"{name}_command", required=True, metavar="ACTION", help=actions_help)


def model_argument(p: argparse.ArgumentParser, help: str = MODEL_HELP) -> None:
    """The positional MODEL of commands that run or rewrite one model."""
    p.add_argument("model", metavar="MODEL", help=help)


def teacher_argument(p: argparse.ArgumentParser) -> None:
    """--teacher of commands that read a teacher's layers or transcripts."""
    p.add_argument("--teacher", required=True, help=MODEL_HELP)


def new_folder_argument(p: argparse.ArgumentParser, what: str = "output folder") -> None:
    """--out of commands that write a model folder; they refuse one that holds files."""
    p.add_argument("--out", type=Path, required=True, help=f"{what} (must not exist or be empty)")


def whisper_language(value: str) -> str:
    """An argparse type: a language Whisper knows, by code (fr) or name (french); returns the code.
    Whether the model at hand speaks it is checked once it is loaded (`runtime.check_language`)."""
    from transformers.models.whisper.tokenization_whisper import LANGUAGES, TO_LANGUAGE_CODE

    code = TO_LANGUAGE_CODE.get(value.lower(), value.lower())
    if code not in LANGUAGES:
        raise argparse.ArgumentTypeError(f"got {value!r}, not a language Whisper knows; give its code or name "
                                         f"(en or english, fr or french, ...)")
    return code


# -- option groups of the commands that transcribe -------------------------------------------------

def decoding_arguments(p: argparse.ArgumentParser, batch: str) -> None:
    """The decoding flags shared by every command that transcribes; ``batch`` says what a batch holds."""
    p.add_argument("--batch-size", type=at_least(1), default=8, help=f"{batch} (default 8)")
    p.add_argument("--beam-size", type=at_least(1), default=1, help="beam width; 1 is greedy (default)")
    p.add_argument("--max-new-tokens", type=at_least(1), default=224, help="tokens per 30 s window (default 224)")
    p.add_argument("--language", type=whisper_language, default="en",
                   help="language of multilingual models, by code or name (default en; an English-only model "
                        "refuses any other)")


def decoding(args: argparse.Namespace):
    from voxdistill.decoding import DecodingOptions

    return DecodingOptions(num_beams=args.beam_size, max_new_tokens=args.max_new_tokens,
                           language=args.language, batch_size=args.batch_size, checks=speech_checks(args))


def temperatures(value: str) -> tuple[float, ...]:
    """A comma-separated list of temperatures, or 'none' for no fallback."""
    if value.strip().lower() == "none":
        return ()
    try:
        values = tuple(float(t) for t in value.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a comma-separated list of numbers, nor 'none'") from None
    if not all(0 < t <= 2 for t in values):
        raise argparse.ArgumentTypeError(f"{value!r}: each temperature is above 0 and at most 2")
    return values


# Whisper's transcriber's thresholds, their defaults and letters: read by the checks on every decoded
# window (`check_arguments`) and by pseudo-label's filters (`filter_arguments`), each with its own help.
WHISPER_THRESHOLDS = {"--no-speech-threshold": (0.6, "P"), "--logprob-threshold": (-1.0, "L"),
                      "--compression-ratio-threshold": (2.4, "R")}


def _whisper_threshold(group, flag: str, help: str) -> None:
    default, metavar = WHISPER_THRESHOLDS[flag]
    group.add_argument(flag, type=or_none(float), default=default, metavar=metavar, help=f"{help} (default {default:g})")


def check_arguments(p: argparse.ArgumentParser, thresholds: bool = True) -> None:
    """The flags of the checks on each decoded window (`decoding.SpeechChecks`). ``thresholds``: also
    Whisper's three thresholds and the temperature fallback (pseudo-label takes the thresholds from
    its filters, `filter_arguments`, which share their names, and never resamples a label)."""
    group = p.add_argument_group(
        "checks on every decoded window",
        "Whisper's transcriber's rules and defaults: silence gives an empty transcript, a loop or a transcript the "
        "model doubts is decoded again at higher temperatures; each utterance's decision is recorded. 'none' turns "
        "a rule off.")
    if thresholds:
        _whisper_threshold(group, "--no-speech-threshold", "a window whose no-speech probability is above P and mean "
                                                           "log-probability below --logprob-threshold is silence: empty")
        _whisper_threshold(group, "--logprob-threshold", "a window whose tokens' mean log-probability is below L is "
                                                         "decoded again at the next temperature")
        _whisper_threshold(group, "--compression-ratio-threshold", "a window whose text zlib compresses by more than R "
                                                                   "(a loop) is decoded again at the next temperature")
        group.add_argument("--repeated-ngram-threshold", type=or_none(int), default=3, metavar="N",
                           help="a window whose transcript repeats word 3-grams more than N times beyond their "
                                "first (a loop too short to compress) is decoded again at the next temperature "
                                "(default 3)")
        group.add_argument("--temperature-fallback", type=temperatures, default=(0.2, 0.4, 0.6, 0.8, 1.0),
                           metavar="T,T,...", help="the temperatures tried in turn (default 0.2,0.4,0.6,0.8,1.0; "
                                                   "'none': decode once)")
    group.add_argument("--no-vad", action="store_true",
                       help="do not ask Silero VAD about windows the model doubts (by default one in which VAD "
                            "hears no speech is empty: a model can be sure of a word in silence)")
    group.add_argument("--vad-threshold", type=float, default=0.5, metavar="P",
                       help="Silero's speech probability above which a frame is speech (default 0.5)")


def speech_checks(args: argparse.Namespace):
    from voxdistill.decoding import SpeechChecks

    if not hasattr(args, "temperature_fallback"):  # pseudo-label: its thresholds are its filters', read at merge
        return SpeechChecks(vad=not args.no_vad, vad_threshold=args.vad_threshold)
    return SpeechChecks(no_speech_threshold=args.no_speech_threshold, logprob_threshold=args.logprob_threshold,
                        compression_ratio_threshold=args.compression_ratio_threshold,
                        repeated_ngram_threshold=args.repeated_ngram_threshold, temperatures=args.temperature_fallback, vad=not args.no_vad,
                        vad_threshold=args.vad_threshold)


def runtime_arguments(p: argparse.ArgumentParser) -> None:
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


def runtime(args: argparse.Namespace):
    from voxdistill.runtime import Runtime

    return Runtime.of(args.runtime, args.compute_type)


def filter_arguments(parser: argparse.ArgumentParser) -> None:
    """The reference-free pseudo-label filter flags (`teacher.filters.LabelFilters`), also read by
    benchmarks/label_filters.py."""
    group = parser.add_argument_group(
        "filters for utterances without a reference",
        "Whisper's own rules and defaults; 'none' turns one off. Utterances with a reference are judged by "
        "--wer-threshold instead. The filters read values every record keeps, so running the same command "
        "again with other thresholds relabels nothing.")
    _whisper_threshold(group, "--compression-ratio-threshold", "drop a transcript whose text zlib compresses by more "
                                                               "than R: a repetition loop")
    _whisper_threshold(group, "--logprob-threshold", "drop a transcript whose tokens' mean log-probability under the "
                                                     "teacher is below L")
    _whisper_threshold(group, "--no-speech-threshold", "drop as non-speech a clip whose no-speech probability is above "
                                                       "P, unless its mean log-probability is above --logprob-threshold")
    group.add_argument("--no-speech-alone", action="store_true",
                       help="apply --no-speech-threshold whatever the log-probability: also drops a transcript the "
                            "teacher is sure of in silence (tiny.en's \"you\")")
    group.add_argument("--repeated-ngram-threshold", type=or_none(int), default=3, metavar="N",
                       help="drop a transcript that repeats word 3-grams more than N times: a loop too short "
                            "for the compression ratio (default 3)")
    group.add_argument("--keep-empty", action="store_true", help="keep transcripts without words (dropped by default)")


def label_filters(args: argparse.Namespace):
    from voxdistill.teacher.filters import LabelFilters

    return LabelFilters(
        compression_ratio_threshold=args.compression_ratio_threshold, logprob_threshold=args.logprob_threshold,
        no_speech_threshold=args.no_speech_threshold, no_speech_alone=args.no_speech_alone,
        repeated_ngram_threshold=args.repeated_ngram_threshold, drop_empty=not args.keep_empty)
