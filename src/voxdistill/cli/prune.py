"""voxdistill prune: remove a trained student's least important feed-forward neurons, or trim its vocabulary."""

from __future__ import annotations

import argparse
from pathlib import Path

from voxdistill.cli.options import MODEL_HELP, at_least, model_argument, new_folder_argument


def register(sub) -> None:
    p = sub.add_parser(
        "prune", help="remove a trained student's least important feed-forward neurons, or trim its vocabulary "
                      "(structured pruning)",
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
                    "--set student=OUT. With --vocabulary N instead, the output projection shrinks: see its help.")
    model_argument(p, help=f"the model to prune, e.g. a trained student RUN/model; {MODEL_HELP}")
    p.add_argument("--vocabulary", type=at_least(257), default=None, metavar="N",
                   help="instead of pruning neurons: keep the first N ordinary tokens of an English-only "
                        "vocabulary (byte-pair encoding stopped after N - 256 merges; the 1,608 special tokens "
                        "stay), so each decoded token costs an output projection over N + 1,608 rows instead "
                        "of 51,864; rarer words are then spelled in several tokens, which the decoder must "
                        "learn (configs/vocabulary-recover.yaml). Needs no calibration")
    p.add_argument("--calibration", type=Path, default=None, metavar="MANIFEST",
                   help="JSON Lines manifest of clips that fit the model's window, with transcripts; a "
                        "pseudo-label manifest gives its reference where it has one, else the teacher's "
                        "transcript (as training does)")
    p.add_argument("--clips", type=at_least(1), default=64, metavar="N",
                   help="calibration clips, spread evenly over the manifest (default 64)")
    p.add_argument("--ffn-keep", type=float, default=None, metavar="F",
                   help="fraction of every layer's feed-forward neurons to keep, above 0 and at most 1 (e.g. 0.5)")
    p.add_argument("--encoder-ffn-dim", type=int, default=None, metavar="N",
                   help="instead of --ffn-keep: neurons kept per encoder layer (default: all)")
    p.add_argument("--decoder-ffn-dim", type=int, default=None, metavar="N",
                   help="instead of --ffn-keep: neurons kept per decoder layer (default: all)")
    p.add_argument("--batch-size", type=at_least(1), default=8, help="clips per forward pass (default 8)")
    new_folder_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from voxdistill.distill.prune import PruneError, prune_student, trim_student
    from voxdistill.models.vocabulary import VocabularyMap

    neurons = (args.ffn_keep, args.encoder_ffn_dim, args.decoder_ffn_dim)
    if args.vocabulary is not None:
        if any(option is not None for option in neurons) or args.calibration is not None:
            raise PruneError("--vocabulary and a feed-forward option or --calibration both given: prune one thing per call "
                             "(prune the neurons, then trim the vocabulary of the result, or the other way)")
        out, record = trim_student(args.model, args.vocabulary, args.out)
        trimmed = record["vocabulary"]
        size = VocabularyMap.from_dict(trimmed["map"]).size
        params = trimmed["parameters"]
        print(f"{args.model} -> {out}: vocabulary {trimmed['map']['source_size']} -> {size} tokens; "
              f"{params['before'] / 1e6:.1f}M -> {params['after'] / 1e6:.1f}M parameters")
        print(f"recover: voxdistill distill --config configs/vocabulary-recover.yaml --set student={out} --set out=RUN")
        return 0
    if args.calibration is None:
        raise PruneError("--calibration MANIFEST is needed to measure which neurons matter")
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
