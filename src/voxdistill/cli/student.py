"""voxdistill student init: a new student from a subset of the teacher's layers."""

from __future__ import annotations

import argparse

from voxdistill.cli.options import (
    at_least, command_group, new_folder_argument, pad_step, teacher_argument, trailing_silence,
)


def register(sub) -> None:
    student_sub = command_group(sub, "student", help="build students from a teacher's layers",
                                description="Build a student Whisper from a teacher's own layers.")
    init = student_sub.add_parser(
        "init", help="copy a subset of the teacher's layers (and optionally narrow them) into a student",
        description="Copy the teacher's embeddings, front end and a subset of its encoder and "
                    "decoder layers into a new Hugging Face Whisper folder that records where "
                    "every layer came from (or, with --family ctc, its front end and encoder layers "
                    "under a CTC head). N picks N maximally spaced layers (first and last "
                    "always kept); 0,5 picks layers 0 and 5.")
    teacher_argument(init)
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
    init.add_argument("--lstm-hidden", type=at_least(1), default=256, metavar="H",
                      help="CTC lstm head: hidden units per direction (default 256)")
    init.add_argument("--lstm-layers", type=at_least(1), default=1, metavar="L",
                      help="CTC lstm head: stacked layers (default 1)")
    init.add_argument("--d-model", type=at_least(1), default=None,
                      help="narrower residual width, initialised from the teacher's largest dimensions")
    init.add_argument("--ffn-dim", type=at_least(1), default=None,
                      help="narrower feed-forward width, initialised from the teacher's most important neurons")
    init.add_argument("--window-seconds", type=at_least(1), default=None, metavar="S",
                      help="seconds of audio the student's encoder sees at once (default: the teacher's 30); "
                           "clips are zero-padded to it, so a window that just fits your clips saves encoder "
                           "time; longer audio is cut into windows")
    init.add_argument("--pad-step", type=pad_step, default=None, metavar="S",
                      help="Whisper students: encode each clip at its own length, zero-padded to the next multiple "
                           "of S seconds (at most the window; a multiple of 0.02), instead of to the whole window: "
                           "a 4 s clip costs 4 s of encoder work. Distillation trains it on exactly that padding")
    init.add_argument("--trailing-silence", type=trailing_silence, default=0.0, metavar="S",
                      help="with --pad-step: at least S seconds of zeros after each clip before rounding up to the "
                           "step (default 0). Whisper's encoder was trained on speech followed by silence; 8 keeps "
                           "tiny.en's accuracy on real speech at the clip's length")
    new_folder_argument(init, "student folder")
    init.set_defaults(func=run_init)


def run_init(args: argparse.Namespace) -> int:
    from voxdistill.families.student_init import StudentInit, init_student

    made = init_student(StudentInit(
        teacher=args.teacher, out=args.out, family=args.family, encoder_layers=args.encoder_layers,
        decoder_layers=args.decoder_layers, d_model=args.d_model, ffn_dim=args.ffn_dim,
        window_seconds=args.window_seconds, pad_step_seconds=args.pad_step,
        trailing_silence_seconds=args.trailing_silence, head=args.head,
        lstm_hidden=args.lstm_hidden, lstm_layers=args.lstm_layers))
    print(f"student: {made.parameters / 1e6:.1f}M parameters ({made.parameters / made.teacher_parameters:.0%} of "
          f"the teacher's {made.teacher_parameters / 1e6:.1f}M) -> {made.out}")
    for key, value in made.provenance.items():
        print(f"  {key}: {value}")
    return 0
