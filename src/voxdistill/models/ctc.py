"""The CTC student family: a Whisper encoder made of chosen teacher layers, followed by a CTC head
over characters, so that a student transcribes in one encoder pass with no decoder loop.

- ``head="linear"`` (the DNN student): one linear layer from each final encoder state to the labels;
- ``head="lstm"`` (the RNN student): a small bidirectional LSTM over the encoder states, then a linear
  layer; it can re-order evidence across frames, which a per-frame linear head cannot.

The encoder is built by the Whisper student builder (`models.student.build_student`): its layers are
exact copies of the chosen teacher layers, its window the student's; only the head starts random.

Labels are characters: the CTC blank (0), then space, apostrophe and a-z. Characters because the
data is tiny: every word is spelled with the same 28 symbols (no out-of-vocabulary words), 29
outputs keep the head a few thousand weights, and a learned subword vocabulary needs more text than
the demo corpus holds to be any better than characters. Text is normalised to that alphabet
(`Alphabet.normalise`): digits and other symbols are dropped, so transcripts should spell numbers
out before they become targets.

A folder of a CTC student holds ``model.safetensors``, ``ctc_config.json`` (head, window, alphabet
and the encoder's shape), ``preprocessor_config.json`` (the windowed feature extractor) and
``student.json`` (provenance, ``"family": "ctc"``). An ONNX export (`formats.onnx`) holds
``model.onnx`` beside the same files and an export record.
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections.abc import Sequence
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from transformers import WhisperConfig, WhisperFeatureExtractor
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from voxdistill.audio import HOP_LENGTH, SAMPLE_RATE
from voxdistill.errors import ModelLoadError
from voxdistill.files import check_new_folder, folder_written_atomically
from voxdistill.models.loading import Whisper
from voxdistill.models.student import (
    STUDENT_FILE, StudentConfigError, StudentSpec, build_student, window_positions, window_seconds as
    whisper_window_seconds, windowed_processor,
)

CTC_CONFIG_FILE = "ctc_config.json"
WEIGHTS_FILE = "model.safetensors"
ONNX_FILE = "model.onnx"
PREPROCESSOR_FILE = "preprocessor_config.json"
HEADS = ("linear", "lstm")
BLANK = 0  # the CTC blank's label; symbol i of the alphabet is label i + 1
BLANK_TEXT = "<blank>"  # how `Alphabet.decode` writes a blank when asked to keep special tokens
DEFAULT_ALPHABET = " 'abcdefghijklmnopqrstuvwxyz"
# One encoder frame per two mel frames (conv2 has stride 2), one mel frame per hop.
SAMPLES_PER_FRAME = 2 * HOP_LENGTH
# The WhisperConfig fields that define a WhisperEncoder (its shape and its training-time dropout).
ENCODER_KEYS = ("num_mel_bins", "d_model", "encoder_layers", "encoder_attention_heads", "encoder_ffn_dim",
                "max_source_positions", "activation_function", "dropout", "attention_dropout",
                "activation_dropout", "encoder_layerdrop", "scale_embedding", "init_std")

_HYPHENS = "-\u2010\u2011\u2012\u2013\u2014\u2212"  # hyphen-minus, hyphens, dashes, minus sign
_APOSTROPHES = "\u2018\u2019\u02bc"  # curly quotes and the modifier letter written for apostrophes


class CTCConfigError(StudentConfigError):
    """A CTC student's settings are impossible, or its output folder is taken."""


class CTCLoadError(ModelLoadError):
    """A CTC student folder lacks a file, or a file of it is damaged or lacks a key."""


class Alphabet:
    """The CTC output labels: the blank (0), then one per symbol. Duck-types the part of a
    tokenizer that `runtime.text_of` uses (``decode(ids, skip_special_tokens=True)``)."""

    def __init__(self, symbols: str = DEFAULT_ALPHABET):
        if not symbols or len(set(symbols)) != len(symbols):
            raise CTCConfigError(f"alphabet {symbols!r}: needs at least one symbol, each once")
        self.symbols = symbols
        self._labels = {c: i + 1 for i, c in enumerate(symbols)}

    def __len__(self) -> int:
        return len(self.symbols) + 1

    def normalise(self, text: str) -> str:
        """``text`` in the alphabet: accents removed (NFKD, so "é" is "e" and "ﬁ" is "fi"), lower-case,
        hyphens and dashes and any whitespace as a space, curly apostrophes as ``'``, every other
        character outside the alphabet dropped, runs of spaces collapsed, ends stripped."""
        kept = []
        for c in unicodedata.normalize("NFKD", text).lower():
            if c in _HYPHENS or c.isspace():
                c = " "
            elif c in _APOSTROPHES:
                c = "'"
            if c in self._labels:
                kept.append(c)
        return " ".join("".join(kept).split())

    def encode(self, text: str) -> list[int]:
        return [self._labels[c] for c in self.normalise(text)]

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        return "".join(BLANK_TEXT if i == BLANK else self.symbols[i - 1]
                       for i in map(int, ids) if not (skip_special_tokens and i == BLANK))


@dataclass(frozen=True)
class CTCConfig:
    # "linear": one linear layer over the final encoder states (the DNN student); "lstm": a
    # bidirectional LSTM, then a linear layer (the RNN student)
    head: str
    window_seconds: int  # audio the encoder reads at once; shorter clips are zero-padded to it
    encoder: dict  # the WhisperConfig fields of the encoder (ENCODER_KEYS)
    alphabet: str = DEFAULT_ALPHABET  # the symbols after the blank: label i + 1 is alphabet[i]
    lstm_hidden: int = 256  # LSTM units per direction (head "lstm" only)
    lstm_layers: int = 1  # stacked bidirectional LSTM layers (head "lstm" only)

    def __post_init__(self):
        types = {"str": str, "int": int, "dict": dict}
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, types[f.type]) or isinstance(value, bool):
                raise CTCConfigError(f"CTCConfig.{f.name}={value!r}: must be of type {f.type}")
        if self.head not in HEADS:
            raise CTCConfigError(f"CTCConfig.head={self.head!r}: choose from {', '.join(HEADS)}")
        for name in ("window_seconds", "lstm_hidden", "lstm_layers"):
            if getattr(self, name) < 1:
                raise CTCConfigError(f"CTCConfig.{name}={getattr(self, name)}: must be positive")
        Alphabet(self.alphabet)
        missing = [k for k in ENCODER_KEYS if k not in self.encoder]
        if missing:
            raise CTCConfigError(f"CTCConfig.encoder lacks {', '.join(missing)}")
        if self.encoder["max_source_positions"] != window_positions(self.window_seconds):
            raise CTCConfigError(
                f"CTCConfig.encoder.max_source_positions={self.encoder['max_source_positions']} does not fit "
                f"window_seconds={self.window_seconds} ({window_positions(self.window_seconds)} positions)")

    @property
    def d_model(self) -> int:
        return self.encoder["d_model"]

    @property
    def frames(self) -> int:
        """Encoder frames (output time steps) of one window."""
        return self.encoder["max_source_positions"]

    @property
    def n_labels(self) -> int:
        return len(self.alphabet) + 1

    def to_dict(self) -> dict:
        return asdict(self)


def frames_of_samples(num_samples, frames: int) -> Tensor:
    """Encoder frames that audio of ``num_samples`` samples covers: ceil(samples / 320) (a mel frame
    per 160-sample hop, an encoder frame per two mel frames), at most the window's ``frames``."""
    samples = torch.as_tensor(num_samples, dtype=torch.long)
    return ((samples + SAMPLES_PER_FRAME - 1) // SAMPLES_PER_FRAME).clamp(max=frames)


class CTCOutput(NamedTuple):
    logits: Tensor  # (B, T, n_labels)
    encoder_states: Tensor  # (B, T, d_model): the final encoder states the head read


class CTCStudent(nn.Module):
    """A Whisper encoder and a CTC head. The encoder reads whole windows (clips zero-padded, as
    Whisper's encoder always does), so the LSTM head also runs over the padding after a clip's end:
    the same input in training and inference, and no packed sequences in the ONNX graph."""

    def __init__(self, config: CTCConfig):
        super().__init__()
        self.config = config
        self.alphabet = Alphabet(config.alphabet)
        self.encoder = WhisperEncoder(WhisperConfig(**config.encoder))
        if config.head == "lstm":
            self.lstm = nn.LSTM(config.d_model, config.lstm_hidden, config.lstm_layers, batch_first=True,
                                bidirectional=True)
            self.output = nn.Linear(2 * config.lstm_hidden, config.n_labels)
        else:
            self.lstm = None
            self.output = nn.Linear(config.d_model, config.n_labels)

    def forward(self, input_features: Tensor | None = None, encoder_states: Tensor | None = None) -> CTCOutput:
        """Logits for log-mel ``input_features`` (B, n_mels, 2T) of whole windows, or for final
        ``encoder_states`` (B, T, d_model) computed before (a frozen encoder's cache): one of the two.
        Both paths go through ``forward`` so that a wrapper (DDP) sees every use of the weights."""
        if (input_features is None) == (encoder_states is None):
            raise ValueError("CTCStudent takes input_features or encoder_states, one of the two")
        if encoder_states is None:
            encoder_states = self.encoder(input_features).last_hidden_state  # (B, T, d_model)
        states = encoder_states
        if self.lstm is not None:
            states, _ = self.lstm(states)  # (B, T, 2 * lstm_hidden)
        return CTCOutput(self.output(states), encoder_states)  # logits (B, T, n_labels)

    def output_lengths(self, num_samples) -> Tensor:
        """Frames covered by audio of ``num_samples`` samples (an int or one per clip)."""
        return frames_of_samples(num_samples, self.config.frames)


@torch.no_grad()
def _initialise_head(model: CTCStudent, seed: int) -> None:
    """PyTorch's default ranges (uniform within ±1/sqrt(fan-in) for the linear layer, ±1/sqrt(hidden)
    for the LSTM), drawn from a generator of ``seed`` so the global random state is not consulted.
    The output bias starts at zero, with no prior for the blank: every label starts equally likely, so
    the first loss is close to its value for uniform outputs, a check that the loss is wired right;
    CTC reaches its blank-dominated phase within the first steps by itself."""
    generator = torch.Generator().manual_seed(seed)
    if model.lstm is not None:
        bound = 1 / math.sqrt(model.config.lstm_hidden)
        for parameter in model.lstm.parameters():
            parameter.uniform_(-bound, bound, generator=generator)
    bound = 1 / math.sqrt(model.output.in_features)
    model.output.weight.uniform_(-bound, bound, generator=generator)
    model.output.bias.zero_()


def build_ctc_student(teacher: Whisper, encoder_layers: Sequence[int], window_seconds: int, head: str,
                      lstm_hidden: int = 256, lstm_layers: int = 1,
                      seed: int = 0) -> tuple[CTCStudent, WhisperFeatureExtractor]:
    """A CTC student whose encoder layer i is an exact copy of teacher encoder layer
    ``encoder_layers[i]`` (conv front end, first positions of the window, final layer norm: the
    teacher's), and its head initialised from ``seed``; returned in eval mode, with the feature
    extractor that pads audio to its window."""
    # The Whisper builder checks the layers and window and copies the weights; its one decoder
    # layer is thrown away.
    spec = StudentSpec(encoder_layers=tuple(encoder_layers), decoder_layers=(0,), window_seconds=window_seconds)
    whisper_student, _ = build_student(teacher.model, spec)
    encoder = whisper_student.model.encoder
    config = CTCConfig(head=head, window_seconds=window_seconds,
                       encoder={k: getattr(encoder.config, k) for k in ENCODER_KEYS},
                       lstm_hidden=lstm_hidden, lstm_layers=lstm_layers)
    model = CTCStudent(config)
    model.encoder.load_state_dict(encoder.state_dict(), strict=True)
    _initialise_head(model, seed)
    return model.eval(), windowed_processor(teacher.processor, window_seconds).feature_extractor


def ctc_provenance(teacher: Whisper, model: CTCStudent, encoder_layers: Sequence[int]) -> dict:
    """The provenance `save_ctc_student` records for ``model`` built from ``teacher`` by
    `build_ctc_student` (the same fields as a Whisper student's, for the encoder)."""
    shape = ("encoder_layers", "d_model", "encoder_ffn_dim")
    return {
        "teacher": {"source": teacher.source, "fingerprint": teacher.fingerprint.digest},
        "encoder_layers": list(encoder_layers),  # student layer i copies teacher encoder layer [i]
        "teacher_shape": {k: getattr(teacher.model.config, k) for k in shape},
        "student_shape": {k: model.config.encoder[k] for k in shape},
        "width_initialisation": ["none: the teacher's widths, encoder layers copied exactly"],
        "window_seconds": {"teacher": whisper_window_seconds(teacher.model.config),
                           "student": model.config.window_seconds},
    }


def write_ctc_description(folder: Path, model: CTCStudent, feature_extractor: WhisperFeatureExtractor) -> None:
    """The files that describe the model beside its weights (safetensors or ONNX): config and
    feature extractor."""
    config = model.config
    if feature_extractor.n_samples != config.window_seconds * SAMPLE_RATE:
        raise CTCConfigError(f"the feature extractor pads to {feature_extractor.n_samples / SAMPLE_RATE:g} s "
                             f"but the model's window is {config.window_seconds} s; pass the one "
                             f"build_ctc_student or load_ctc_student returned")
    (folder / CTC_CONFIG_FILE).write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    feature_extractor.save_pretrained(folder)  # preprocessor_config.json


def write_ctc_provenance(folder: Path, config: CTCConfig, provenance: dict) -> None:
    """``student.json``: ``provenance`` with the family, head and alphabet."""
    teacher = provenance.get("teacher")
    if not isinstance(teacher, dict) or not {"source", "fingerprint"} <= teacher.keys() \
            or "encoder_layers" not in provenance:
        raise CTCConfigError("provenance needs 'teacher' ({'source', 'fingerprint'}) and 'encoder_layers' "
                             "(ctc_provenance makes them)")
    head = {"lstm_hidden": config.lstm_hidden, "lstm_layers": config.lstm_layers} if config.head == "lstm" else {}
    record = {"family": "ctc", **provenance, "head": config.head, **head, "alphabet": config.alphabet}
    if not isinstance(record.get("window_seconds"), dict):
        record["window_seconds"] = config.window_seconds
    (folder / STUDENT_FILE).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")


def save_ctc_student(model: CTCStudent, feature_extractor: WhisperFeatureExtractor, folder: Path,
                     provenance: dict) -> Path:
    """Write ``folder`` (which must not exist, or be empty) atomically: ``model.safetensors``,
    ``ctc_config.json``, ``preprocessor_config.json`` and ``student.json`` (``provenance``, e.g. from
    `ctc_provenance`, with the family, head, window and alphabet)."""
    folder = Path(folder)
    check_new_folder(folder)
    with folder_written_atomically(folder) as tmp:
        write_ctc_provenance(tmp, model.config, provenance)
        write_ctc_folder(model, feature_extractor, tmp)
    return folder


def write_ctc_folder(model: CTCStudent, feature_extractor: WhisperFeatureExtractor, folder: Path) -> None:
    """Write the weights, ``ctc_config.json`` and ``preprocessor_config.json`` of ``model`` into the
    existing, empty ``folder`` (written beside them or not, ``student.json`` is the caller's); not
    atomic by itself: `save_ctc_student` is."""
    state = {name: tensor.detach().contiguous() for name, tensor in model.state_dict().items()}
    save_file(state, Path(folder) / WEIGHTS_FILE, metadata={"format": "pt"})
    write_ctc_description(Path(folder), model, feature_extractor)


def read_record(path: Path) -> dict:
    """A JSON object file of a CTC folder; a `CTCLoadError` naming it when missing or damaged."""
    if not path.is_file():
        raise CTCLoadError(f"{path}: missing; the folder is not a complete CTC student (an interrupted "
                           f"save or copy?); save or export the model again")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CTCLoadError(f"{path}: damaged, not JSON ({err}); save or export the model again") from None
    if not isinstance(record, dict):
        raise CTCLoadError(f"{path}: damaged, not a JSON object; save or export the model again")
    return record


def read_ctc_folder(folder: str | Path) -> tuple[CTCConfig, WhisperFeatureExtractor]:
    """The config and feature extractor of a CTC student folder (saved or exported), checked
    against each other; a `CTCLoadError` naming the file when one is missing or damaged."""
    folder = Path(folder).expanduser()
    path = folder / CTC_CONFIG_FILE
    record = read_record(path)
    names = {f.name for f in fields(CTCConfig)}
    required = {f.name for f in fields(CTCConfig) if f.default is MISSING}
    missing, unknown = sorted(required - record.keys()), sorted(record.keys() - names)
    if missing or unknown:
        problems = ([f"lacks {', '.join(missing)}"] if missing else []) + \
                   ([f"has unknown keys {', '.join(unknown)}"] if unknown else [])
        raise CTCLoadError(f"{path}: {' and '.join(problems)}; it is damaged or from another program")
    try:
        config = CTCConfig(**record)
    except CTCConfigError as err:
        raise CTCLoadError(f"{path}: {err}") from None
    preprocessor = folder / PREPROCESSOR_FILE
    read_record(preprocessor)
    feature_extractor = WhisperFeatureExtractor.from_pretrained(folder)
    if (feature_extractor.n_samples != config.window_seconds * SAMPLE_RATE
            or feature_extractor.feature_size != config.encoder["num_mel_bins"]):
        raise CTCLoadError(
            f"{preprocessor}: pads to {feature_extractor.n_samples / SAMPLE_RATE:g} s with "
            f"{feature_extractor.feature_size} mel bins, but {CTC_CONFIG_FILE} says {config.window_seconds} s "
            f"and {config.encoder['num_mel_bins']}; the files come from different models")
    return config, feature_extractor


def load_ctc_student(folder: str | Path) -> tuple[CTCStudent, WhisperFeatureExtractor, CTCConfig]:
    """A saved CTC student in float32, in eval mode (call ``.train()`` to train it), with its feature
    extractor and config. Weights are read only from safetensors."""
    folder = Path(folder).expanduser()
    config, feature_extractor = read_ctc_folder(folder)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise CTCLoadError(f"{weights}: missing; the folder has no weights (an ONNX export runs only in "
                           f"the onnx runtime); save or copy the model again")
    try:
        state = load_file(weights)
    except (SafetensorError, OSError) as err:
        raise CTCLoadError(f"{weights}: corrupt or truncated safetensors file ({err}); save or copy the "
                           f"model again") from None
    model = CTCStudent(config)
    expected = model.state_dict()
    missing, unknown = sorted(expected.keys() - state.keys()), sorted(state.keys() - expected.keys())
    wrong = sorted(k for k in expected.keys() & state.keys() if state[k].shape != expected[k].shape)
    if missing or unknown or wrong:
        problems = [f"{what} {len(keys)} tensor(s) (e.g. {keys[0]})" for what, keys in
                    (("lacks", missing), ("has unknown", unknown), ("has wrongly shaped", wrong)) if keys]
        raise CTCLoadError(f"{weights}: {', '.join(problems)} for the model {CTC_CONFIG_FILE} describes; "
                           f"the files belong to different models or are damaged")
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return model.eval(), feature_extractor, config


def ctc_frames_needed(target: Sequence[int]) -> int:
    """The fewest frames CTC can emit ``target`` in: one per label, plus a blank between equal
    neighbours (so ``aab`` needs 4)."""
    return len(target) + sum(a == b for a, b in zip(target, target[1:]))


def ctc_loss(logits: Tensor, input_lengths, targets: Sequence[Sequence[int]]) -> Tensor:
    """The mean over the batch of each utterance's CTC loss divided by its target length (PyTorch's
    ``reduction="mean"``; an empty target divides by 1), for ``logits`` (B, T, n_labels) of which the
    first ``input_lengths[b]`` frames count. Log-softmax is taken in float32.
    ``zero_infinity=True``: an utterance that cannot fit its frames (fewer than `ctc_frames_needed`)
    adds 0 and no gradient instead of inf, yet still counts in the batch mean; check targets before
    training so such utterances are refused, not silently ignored."""
    device = logits.device
    log_probs = torch.log_softmax(logits.float(), dim=-1).transpose(0, 1)  # (T, B, n_labels)
    flat = torch.tensor([label for target in targets for label in target], dtype=torch.long, device=device)
    target_lengths = torch.tensor([len(target) for target in targets], dtype=torch.long, device=device)
    return F.ctc_loss(log_probs, flat, torch.as_tensor(input_lengths, dtype=torch.long, device=device),
                      target_lengths, blank=BLANK, reduction="mean", zero_infinity=True)


def greedy_ctc(scores: Tensor | np.ndarray, lengths) -> list[list[int]]:
    """Best-path decoding of ``scores`` (B, T, n_labels: logits or log-probabilities, a tensor or an
    array): the best label of each of the first ``lengths[b]`` frames, repeats collapsed, blanks
    dropped (so ``a a _ a b b`` is ``a a b``)."""
    best = torch.as_tensor(scores).argmax(dim=-1).tolist()  # (B, T)
    decoded = []
    for row, length in zip(best, lengths):
        row = row[: int(length)]
        decoded.append([label for k, label in enumerate(row) if label != BLANK and (k == 0 or row[k - 1] != label)])
    return decoded
