"""voxdistill corpus build|import|check: the synthetic corpus, the user's own audio, a manifest's health."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from voxdistill.audio import MIN_SECONDS
from voxdistill.cli.options import at_least, command_group


def register(sub) -> None:
    corpus_sub = command_group(sub, "corpus", help="build, import and check speech corpora",
                               description="Build the built-in synthetic corpus, import your own audio, "
                                           "or check a manifest.",
                               actions_help="what to do with a corpus")
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
    build.add_argument("--jobs", type=at_least(1), default=None,
                       help="parallel synthesis processes (default: CPU count)")
    build.set_defaults(func=run_build)

    imp = corpus_sub.add_parser(
        "import", help="make a manifest from a folder of audio or a saved datasets dataset",
        description="SOURCE is a folder of audio files (a .txt file with the same name holds the "
                    "transcript) or a Hugging Face datasets dataset saved with save_to_disk. A manifest that "
                    "exists in --out is never replaced: remove it to import again.")
    imp.add_argument("source", type=Path, metavar="SOURCE",
                     help="a folder of audio files (with .txt transcripts beside them), or a folder "
                          "written by datasets' save_to_disk")
    imp.add_argument("--out", type=Path, required=True, help="folder for the manifest (and copied dataset audio)")
    imp.add_argument("--name", help="manifest name for a folder import (default: the folder's name)")
    imp.add_argument("--domain", help="domain label to give every utterance")
    imp.add_argument("--split", help="dataset split to import (datasets only)")
    imp.add_argument("--audio-column", default="audio", help="datasets only (default audio)")
    imp.add_argument("--text-column", help="datasets only (default: first of text, sentence, transcription, ...)")
    imp.set_defaults(func=run_import)

    check = corpus_sub.add_parser(
        "check", help="validate every line and audio file of a manifest",
        description="Report every problem (no utterances, bad line, duplicate id, missing/empty/"
                    "corrupt/truncated/NaN audio, clips too short to hold speech, wrong duration) "
                    "with its line and id; exit 1 if there is any.")
    check.add_argument("manifest", type=Path, metavar="MANIFEST", help="JSON Lines manifest to check")
    check.add_argument("--max-seconds", type=at_least(MIN_SECONDS, float), default=30.0,
                       help="longest acceptable utterance (default 30, Whisper's window)")
    check.set_defaults(func=run_check)


def run_build(args: argparse.Namespace) -> int:
    from voxdistill.data.corpus import PRESETS, build_corpus, format_summary

    start = time.perf_counter()
    summaries = build_corpus(PRESETS[args.preset], args.out, seed=args.seed, jobs=args.jobs)
    print(format_summary(summaries))
    print(f"\nmanifests in {args.out} ({time.perf_counter() - start:.0f} s)")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from voxdistill.data.importers import import_source

    manifest, count = import_source(args.source, args.out, name=args.name, domain=args.domain, split=args.split,
                                    audio_column=args.audio_column, text_column=args.text_column)
    print(f"{count} utterances -> {manifest}")
    return 0


def run_check(args: argparse.Namespace) -> int:
    """Every finding on its own line, then the counts; status 1 if any finding is a problem."""
    from voxdistill.data.check import check_manifest

    problems = notes = 0
    for finding in check_manifest(args.manifest, max_seconds=args.max_seconds):
        print(finding)
        problems += finding.is_problem
        notes += not finding.is_problem
    print(f"{args.manifest}: {problems} problem(s), {notes} note(s)")
    return 1 if problems else 0
