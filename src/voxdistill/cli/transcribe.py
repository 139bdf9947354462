"""voxdistill transcribe: one line (or one JSON record) per audio file."""

from __future__ import annotations

import argparse
import json

from voxdistill.audio import MIN_SECONDS
from voxdistill.cli.options import (check_arguments, decoding, decoding_arguments, model_argument, runtime,
                                    runtime_arguments)


def register(sub) -> None:
    p = sub.add_parser("transcribe", help="transcribe audio files with a Whisper model",
                       description="Print one line per file: the path, a tab, the transcript.")
    model_argument(p)
    p.add_argument("audio", metavar="AUDIO", nargs="+",
                   help=f"audio files (WAV, FLAC, OGG, ...; other rates are resampled to 16 kHz, "
                        f"stereo is downmixed, both with a warning; clips under {MIN_SECONDS:g} s are refused)")
    p.add_argument("--json", action="store_true",
                   help='print [{"audio": path, "text": ..., "decisions": [...]}] instead, with how the checks '
                        'decided each window')
    decoding_arguments(p, batch="30 s windows per forward pass")
    check_arguments(p)
    runtime_arguments(p)
    p.add_argument("--long-audio", choices=["refuse", "split"], default="refuse",
                   help="audio over 30 s: refuse it (default) or transcribe it whole, in overlapping windows of the "
                        "model's length cut at pauses and merged where their words agree")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from voxdistill.audio import load_audio
    from voxdistill.families import load_recogniser
    from voxdistill.runtime import check_language
    from voxdistill.transcribe import transcribe_checked

    # Every file is read and checked before the model loads, so bad input fails in milliseconds.
    audios = [load_audio(path, long_audio=args.long_audio) for path in args.audio]
    options = decoding(args)
    recogniser = load_recogniser(args.model, runtime(args))
    check_language(recogniser, options.language)
    transcripts = transcribe_checked(recogniser, audios, options, progress=len(audios) > options.batch_size)
    if args.json:
        print(json.dumps([{"audio": path, "text": t.text, "decisions": t.decisions}
                          for path, t in zip(args.audio, transcripts)], ensure_ascii=False, indent=2))
    else:
        for path, t in zip(args.audio, transcripts):
            print(f"{path}\t{t.text}")
    return 0
