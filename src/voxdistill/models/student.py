"""Build a student Whisper from a teacher: a subset of its layers, optionally narrower, with every
weight taken from the teacher (never random) and a provenance record saying how.

Depth: student layer i is an exact copy of teacher layer ``spec.*_layers[i]``; the conv front end,
embeddings and final layer norms are copied unchanged. Width: feed-forward neurons and residual
dimensions are kept by magnitude (structured pruning), so the cut is deterministic given the teacher.
Window: a student may take a shorter audio window than the teacher's 30 s (the first positional
embeddings, and a feature extractor that pads to the new length): less encoder work per clip.
Clip length: a student may also encode each clip at its own length, padded only to the next
multiple of a step (``pad_step_seconds``) rather than to the window, so a 4 s clip costs 4 s of
encoder work (`ClipLengthEncoder`). Its encoder sees less padding than the teacher's was trained
on, and loses much of what the teacher knows without trailing silence: ``trailing_silence_seconds``
keeps at least that much after each clip. Distillation trains the student on exactly the padding it
will see.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from transformers import GenerationConfig, WhisperForConditionalGeneration, WhisperProcessor
from transformers.modeling_outputs import BaseModelOutput
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from voxdistill.audio import HOP_LENGTH, SAMPLE_RATE, exact_div
from voxdistill.data.dataset import PAD_STEP_KEY, TRAILING_KEY, clip_pad_step, clip_trailing_samples
from voxdistill.errors import ModelLoadError, VoxdistillError
from voxdistill.files import check_new_folder, folder_written_atomically

STUDENT_FILE = "student.json"  # provenance written beside the Hugging Face files


class StudentConfigError(VoxdistillError):
    """A student specification is impossible for the given teacher, or its output folder is taken."""


def select_layers(n_teacher: int, n_student: int) -> list[int]:
    """``n_student`` of ``n_teacher`` layer indices, maximally spaced, always keeping the first and
    the last. Index i is round(i · (n_teacher − 1) / (n_student − 1)) with halves rounded up, so
    (6, 3) gives [0, 3, 5] and (6, 2) gives [0, 5]."""
    if not 1 <= n_student <= n_teacher:
        raise StudentConfigError(
            f"cannot keep {n_student} of {n_teacher} layers: choose from 1 to {n_teacher}"
        )
    if n_student == 1:
        # The last layer's output is what the next stage (the final layer norm, and through it the
        # decoder's cross-attention or the output projection) was trained on.
        return [n_teacher - 1]
    # floor(x + 1/2) in integers, so that halves round the same way on every machine.
    return [(2 * i * (n_teacher - 1) + n_student - 1) // (2 * (n_student - 1)) for i in range(n_student)]


def _check_indices(indices: list[int] | tuple[int, ...], n_teacher: int, name: str) -> None:
    hint = f"use increasing indices from 0 to {n_teacher - 1}"
    if not indices:
        raise StudentConfigError(f"{name}: a student needs at least 1 layer; {hint}")
    outside = [i for i in indices if not 0 <= i < n_teacher]
    if outside:
        raise StudentConfigError(
            f"{name}: {outside} out of range, the teacher has {n_teacher} layers; {hint}"
        )
    if len(set(indices)) != len(indices):
        raise StudentConfigError(f"{name}: {list(indices)} repeats a layer; {hint}")
    if list(indices) != sorted(indices):
        raise StudentConfigError(
            f"{name}: {list(indices)} is not in increasing order (layers keep the teacher's order); {hint}"
        )


def parse_layers(spec: str, n_teacher: int, *, name: str = "layers") -> list[int]:
    """Teacher layer indices from a command-line value: ``"N"`` keeps N maximally spaced layers
    (``select_layers``), ``"0,5"`` keeps exactly those layers; a single index is written ``"5,"``.
    ``name`` (e.g. ``"--decoder-layers"``) starts every error message."""
    parts = spec.split(",")
    explicit = len(parts) > 1
    if explicit and parts[-1].strip() == "":
        parts = parts[:-1]
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        raise StudentConfigError(
            f"{name} {spec!r}: not integers; give a count from 1 to {n_teacher}, or comma-separated "
            f"layer indices from 0 to {n_teacher - 1}"
        ) from None
    if explicit:
        _check_indices(numbers, n_teacher, f"{name} {spec!r}")
        return numbers
    if not 1 <= numbers[0] <= n_teacher:
        raise StudentConfigError(
            f"{name} {spec!r}: the teacher has {n_teacher} layers, so keep from 1 to {n_teacher}"
        )
    return select_layers(n_teacher, numbers[0])


@dataclass(frozen=True)
class StudentSpec:
    encoder_layers: tuple[int, ...]  # teacher encoder layer copied into each student layer, increasing
    decoder_layers: tuple[int, ...]  # teacher decoder layer copied into each student layer, increasing
    d_model: int | None = None  # residual-stream width; None keeps the teacher's
    ffn_dim: int | None = None  # feed-forward width of every layer; None keeps the teacher's
    # Seconds of audio the encoder sees at once; None keeps the teacher's 30. Clips are zero-padded
    # to this window, so a shorter one saves encoder work on short clips (the encoder dominates on
    # a CPU); longer audio is cut into windows of this length.
    window_seconds: int | None = None
    # Encode each clip at its own length, zero-padded to the next multiple of this many seconds (at
    # most the window) instead of to the window; None pads to the window. A multiple of 0.02 s
    # (two mel frames: the encoder's second convolution has stride 2).
    pad_step_seconds: float | None = None
    # With a pad step: at least this many seconds of zeros after each clip before it is rounded up
    # to the step (at most the window). The teacher's encoder was trained on speech followed by
    # silence; 8 s keeps its WER on real speech at the clip's length (docs/measurements.md).
    trailing_silence_seconds: float = 0.0

    def __post_init__(self):
        for field in ("encoder_layers", "decoder_layers"):
            object.__setattr__(self, field, tuple(getattr(self, field)))
            if not getattr(self, field):
                raise StudentConfigError(f"StudentSpec.{field}: a student needs at least 1 layer")
        if self.pad_step_seconds is not None:
            pad_step_samples(self.pad_step_seconds)  # checked here, so a bad step fails before any work
        trailing_samples(self.trailing_silence_seconds, self.pad_step_seconds)
        for field in ("d_model", "ffn_dim", "window_seconds"):
            value = getattr(self, field)
            if value is not None and value < 1:
                raise StudentConfigError(
                    f"StudentSpec.{field}={value}: must be positive, or None for the teacher's"
                )


def largest(scores: Tensor, k: int) -> Tensor:
    """Indices of the ``k`` largest scores in increasing order, so kept units keep the teacher's order."""
    return scores.topk(k).indices.sort().values


def weight_importance(fc1: nn.Linear, fc2: nn.Linear) -> Tensor:
    """(ffn_dim,) each feed-forward neuron's ||fc1 row|| · ||fc2 column||: how strongly it can read,
    times how strongly it can write. (Its fc1 bias is ignored: a neuron with a zero row still adds a
    constant.) ``distill.prune`` measures what neurons actually do on audio instead."""
    return fc1.weight.norm(dim=1) * fc2.weight.norm(dim=0)


def _head_coordinates(n_heads: int, d_teacher: int, d_student: int) -> Tensor:
    """The first d_student/n_heads coordinates of each head in a (d_teacher,) q/k/v output."""
    head, new_head = d_teacher // n_heads, d_student // n_heads
    return (torch.arange(n_heads)[:, None] * head + torch.arange(new_head)[None, :]).flatten()


def _layer_norm(prefix: str, norm: nn.LayerNorm, dims: Tensor) -> dict[str, Tensor]:
    # A layer norm over a subset of dimensions has different statistics than over all of them: an
    # approximation of a width cut, which the student's training repairs.
    return {f"{prefix}.weight": norm.weight[dims], f"{prefix}.bias": norm.bias[dims]}


def _attention(prefix: str, attn: nn.Module, q_in: Tensor, kv_in: Tensor, out: Tensor,
               heads: Tensor) -> dict[str, Tensor]:
    """q reads ``q_in`` dims, k/v read ``kv_in`` dims (the encoder's in cross-attention), out_proj
    writes ``out`` dims; ``heads`` are the kept coordinates of every head. The model scales scores by
    1/sqrt(new head dim) while the dot product now runs over fewer coordinates: an approximation."""
    return {
        f"{prefix}.q_proj.weight": attn.q_proj.weight[heads][:, q_in],
        f"{prefix}.q_proj.bias": attn.q_proj.bias[heads],
        f"{prefix}.k_proj.weight": attn.k_proj.weight[heads][:, kv_in],
        f"{prefix}.v_proj.weight": attn.v_proj.weight[heads][:, kv_in],
        f"{prefix}.v_proj.bias": attn.v_proj.bias[heads],
        f"{prefix}.out_proj.weight": attn.out_proj.weight[out][:, heads],
        f"{prefix}.out_proj.bias": attn.out_proj.bias[out],
    }


def ffn_state(prefix: str, layer: nn.Module, dims: Tensor, neurons: Tensor) -> dict[str, Tensor]:
    """The fc1/fc2 weights of ``layer`` (state-dict keys under ``prefix``) restricted to residual
    dimensions ``dims`` and feed-forward ``neurons``."""
    return {
        f"{prefix}.fc1.weight": layer.fc1.weight[neurons][:, dims],
        f"{prefix}.fc1.bias": layer.fc1.bias[neurons],
        f"{prefix}.fc2.weight": layer.fc2.weight[dims][:, neurons],
        f"{prefix}.fc2.bias": layer.fc2.bias[dims],
    }


def window_positions(seconds: int) -> int:
    """Encoder positions of a ``seconds``-long window: one per two mel frames (conv2 has stride 2)."""
    return exact_div(seconds * SAMPLE_RATE, HOP_LENGTH * 2)


def window_seconds(config) -> int:
    """The audio window, in seconds, of a Whisper ``config`` (30 for every released Whisper)."""
    return exact_div(config.max_source_positions, window_positions(1))


def pad_step_samples(seconds: float) -> int:
    """Samples in a clip-length padding step of ``seconds``, or a StudentConfigError if the step is
    not a positive whole number of encoder positions (0.02 s: two mel frames)."""
    position = 2 * HOP_LENGTH
    samples = round(seconds * SAMPLE_RATE) if math.isfinite(seconds) else 0
    if not seconds > 0 or abs(samples - seconds * SAMPLE_RATE) > 1e-6 or samples % position:
        raise StudentConfigError(f"pad step {seconds:g} s: must be a positive multiple of "
                                 f"{position / SAMPLE_RATE:g} s (one encoder position), e.g. 1 or 0.5")
    return samples


def trailing_samples(seconds: float, pad_step_seconds: float | None) -> int:
    """Samples of trailing silence ``seconds`` asks for, or a StudentConfigError if it is negative,
    not a whole number of samples, or asked of a model without a pad step."""
    samples = round(seconds * SAMPLE_RATE) if math.isfinite(seconds) else -1
    if samples < 0 or abs(samples - seconds * SAMPLE_RATE) > 1e-6:
        raise StudentConfigError(f"trailing silence {seconds:g} s: must be 0 or more, a whole number of samples")
    if samples and pad_step_seconds is None:
        raise StudentConfigError(f"trailing silence {seconds:g} s needs a pad step: a student that pads every "
                                 f"clip to its window already has silence after it")
    return samples


def after_silence(record: dict) -> str:
    """" after at least T s of silence" for a ``student.json`` or export record whose clips are
    followed by trailing silence, else "" (for sentences that describe the padding)."""
    trailing = record.get("trailing_silence_seconds") or 0
    return f" after at least {trailing:g} s of silence" if trailing else ""


def windowed_processor(processor: WhisperProcessor, seconds: int,
                       pad_step_seconds: float | None = None,
                       trailing_silence_seconds: float = 0.0) -> WhisperProcessor:
    """A copy of ``processor`` whose feature extractor pads (and cuts) audio to ``seconds``, or,
    with ``pad_step_seconds``, pads each clip only to the next multiple of that step, after at
    least ``trailing_silence_seconds`` of zeros."""
    processor = copy.deepcopy(processor)
    fe = processor.feature_extractor
    fe.chunk_length = seconds
    fe.n_samples = seconds * fe.sampling_rate
    fe.nb_max_frames = exact_div(fe.n_samples, fe.hop_length)
    if pad_step_seconds is not None:
        setattr(fe, PAD_STEP_KEY, pad_step_samples(pad_step_seconds))
    elif hasattr(fe, PAD_STEP_KEY):
        delattr(fe, PAD_STEP_KEY)
    if trailing := trailing_samples(trailing_silence_seconds, pad_step_seconds):
        setattr(fe, TRAILING_KEY, trailing)
    elif hasattr(fe, TRAILING_KEY):
        delattr(fe, TRAILING_KEY)
    return processor


class ClipLengthEncoder(WhisperEncoder):
    """Whisper's encoder over features of any even number of frames up to its window, with the
    positional embeddings of the frames given. transformers' encoder refuses every length but its
    window's; at that length this one runs transformers' own forward."""

    def forward(self, input_features: Tensor, attention_mask=None, **kwargs) -> BaseModelOutput:
        frames = input_features.shape[-1]
        stride = self.conv1.stride[0] * self.conv2.stride[0]
        if frames == self.config.max_source_positions * stride:
            return super().forward(input_features, attention_mask, **kwargs)
        if frames % stride or not 0 < frames < self.config.max_source_positions * stride:
            raise ValueError(f"the encoder reads a positive multiple of {stride} mel frames up to "
                             f"{self.config.max_source_positions * stride}, got {frames}")
        return self.any_length(input_features, **kwargs)

    def any_length(self, input_features: Tensor, **kwargs) -> BaseModelOutput:
        """The encoder's computation (as transformers writes it) over the first positions only."""
        hidden = nn.functional.gelu(self.conv1(input_features))
        hidden = nn.functional.gelu(self.conv2(hidden)).permute(0, 2, 1)
        hidden = hidden + self.embed_positions.weight[: hidden.shape[1]]
        hidden = nn.functional.dropout(hidden, p=self.dropout, training=self.training)
        for layer in self.layers:
            if not (self.training and self.layerdrop > 0 and torch.rand([]) < self.layerdrop):
                hidden = layer(hidden, None, **kwargs)
        return BaseModelOutput(last_hidden_state=self.layer_norm(hidden))


def follow_clip_length(model: WhisperForConditionalGeneration) -> None:
    """Let ``model``'s encoder read clips shorter than its window (a clip-length student)."""
    model.model.encoder.__class__ = ClipLengthEncoder


@torch.no_grad()
def _student_state(teacher: WhisperForConditionalGeneration, spec: StudentSpec, d_model: int,
                   encoder_ffn: int, decoder_ffn: int, positions: int) -> dict[str, Tensor]:
    config = teacher.config
    encoder, decoder = teacher.model.encoder, teacher.model.decoder
    # Residual dimensions kept: the decoder's by mean |token embedding|, the encoder's by the
    # norm of conv2's output rows (conv2 writes the encoder's residual stream).
    encoder_dims = largest(encoder.conv2.weight.flatten(1).norm(dim=1), d_model)
    decoder_dims = largest(decoder.embed_tokens.weight.abs().mean(dim=0), d_model)
    # conv1 -> gelu -> conv2 is a small feed-forward block: rank its hidden channels like neurons.
    conv2_kept = encoder.conv2.weight[encoder_dims]  # (d', d, 3)
    conv_channels = largest(
        encoder.conv1.weight.flatten(1).norm(dim=1) * conv2_kept.transpose(0, 1).flatten(1).norm(dim=1),
        d_model,
    )
    state = {
        "model.encoder.conv1.weight": encoder.conv1.weight[conv_channels],  # (d', n_mels, 3)
        "model.encoder.conv1.bias": encoder.conv1.bias[conv_channels],
        "model.encoder.conv2.weight": conv2_kept[:, conv_channels],  # (d', d', 3)
        "model.encoder.conv2.bias": encoder.conv2.bias[encoder_dims],
        # A shorter window keeps the first positions: those of the teacher for the same frames.
        "model.encoder.embed_positions.weight": encoder.embed_positions.weight[:positions, encoder_dims],
        **_layer_norm("model.encoder.layer_norm", encoder.layer_norm, encoder_dims),
        "model.decoder.embed_tokens.weight": decoder.embed_tokens.weight[:, decoder_dims],  # (V, d')
        "model.decoder.embed_positions.weight": decoder.embed_positions.weight[:, decoder_dims],
        **_layer_norm("model.decoder.layer_norm", decoder.layer_norm, decoder_dims),
        "proj_out.weight": teacher.proj_out.weight[:, decoder_dims],  # tied to embed_tokens in Whisper
    }
    heads = _head_coordinates(config.encoder_attention_heads, config.d_model, d_model)
    for i, t in enumerate(spec.encoder_layers):
        layer, prefix = encoder.layers[t], f"model.encoder.layers.{i}"
        state |= _attention(f"{prefix}.self_attn", layer.self_attn,
                            encoder_dims, encoder_dims, encoder_dims, heads)
        state |= _layer_norm(f"{prefix}.self_attn_layer_norm", layer.self_attn_layer_norm, encoder_dims)
        state |= ffn_state(prefix, layer, encoder_dims, largest(weight_importance(layer.fc1, layer.fc2), encoder_ffn))
        state |= _layer_norm(f"{prefix}.final_layer_norm", layer.final_layer_norm, encoder_dims)
    heads = _head_coordinates(config.decoder_attention_heads, config.d_model, d_model)
    for i, t in enumerate(spec.decoder_layers):
        layer, prefix = decoder.layers[t], f"model.decoder.layers.{i}"
        state |= _attention(f"{prefix}.self_attn", layer.self_attn,
                            decoder_dims, decoder_dims, decoder_dims, heads)
        state |= _layer_norm(f"{prefix}.self_attn_layer_norm", layer.self_attn_layer_norm, decoder_dims)
        state |= _attention(f"{prefix}.encoder_attn", layer.encoder_attn,
                            decoder_dims, encoder_dims, decoder_dims, heads)
        state |= _layer_norm(f"{prefix}.encoder_attn_layer_norm", layer.encoder_attn_layer_norm, decoder_dims)
        state |= ffn_state(prefix, layer, decoder_dims, largest(weight_importance(layer.fc1, layer.fc2), decoder_ffn))
        state |= _layer_norm(f"{prefix}.final_layer_norm", layer.final_layer_norm, decoder_dims)
    return state


def _generation_config(teacher: GenerationConfig, decoder_layers: tuple[int, ...],
                       n_heads: int) -> tuple[GenerationConfig, str]:
    """The teacher's generation config, with its alignment heads (used for word timestamps)
    renumbered to the student's decoder layers."""
    generation = copy.deepcopy(teacher)
    heads = getattr(generation, "alignment_heads", None)
    if not heads:
        return generation, "the teacher has none"
    position = {t: i for i, t in enumerate(decoder_layers)}
    kept = [[position[layer], head] for layer, head in heads if layer in position]
    if kept:
        generation.alignment_heads = kept
        return generation, f"kept {len(kept)} of the teacher's {len(heads)}, renumbered to student layers"
    # openai/whisper's default for a model without alignment heads.
    n = len(decoder_layers)
    generation.alignment_heads = [[i, h] for i in range(n // 2, n) for h in range(n_heads)]
    return generation, "none of the teacher's are in kept layers: all heads of the last half of the layers"


def build_student(teacher_model: WhisperForConditionalGeneration,
                  spec: StudentSpec) -> tuple[WhisperForConditionalGeneration, dict]:
    """A student initialised from ``teacher_model`` as ``spec`` says, and a JSON-ready provenance
    record: the teacher layer behind each student layer and how widths were initialised."""
    teacher = teacher_model.config
    _check_indices(spec.encoder_layers, teacher.encoder_layers, "encoder layers")
    _check_indices(spec.decoder_layers, teacher.decoder_layers, "decoder layers")
    d_model = teacher.d_model if spec.d_model is None else spec.d_model
    encoder_ffn = teacher.encoder_ffn_dim if spec.ffn_dim is None else spec.ffn_dim
    decoder_ffn = teacher.decoder_ffn_dim if spec.ffn_dim is None else spec.ffn_dim
    if d_model > teacher.d_model:
        raise StudentConfigError(f"d_model {d_model} is wider than the teacher's {teacher.d_model}; "
                                 f"a student can only be narrower")
    if encoder_ffn > teacher.encoder_ffn_dim or decoder_ffn > teacher.decoder_ffn_dim:
        raise StudentConfigError(f"ffn_dim {spec.ffn_dim} is wider than the teacher's "
                                 f"{min(teacher.encoder_ffn_dim, teacher.decoder_ffn_dim)}; "
                                 f"a student can only be narrower")
    heads = {"encoder": teacher.encoder_attention_heads, "decoder": teacher.decoder_attention_heads}
    for side, n_heads in heads.items():
        if d_model % n_heads:
            raise StudentConfigError(f"d_model {d_model} is not divisible by the {side}'s {n_heads} "
                                     f"attention heads; choose a multiple of {n_heads}")
    teacher_window = window_seconds(teacher)
    window = teacher_window if spec.window_seconds is None else spec.window_seconds
    if window > teacher_window:
        raise StudentConfigError(f"window_seconds {window} is longer than the teacher's {teacher_window} s "
                                 f"window; a student's window can only be shorter")

    config = copy.deepcopy(teacher)
    config.encoder_layers, config.decoder_layers = len(spec.encoder_layers), len(spec.decoder_layers)
    config.d_model, config.encoder_ffn_dim, config.decoder_ffn_dim = d_model, encoder_ffn, decoder_ffn
    config.max_source_positions = window_positions(window)
    student = WhisperForConditionalGeneration(config)
    student.load_state_dict(
        _student_state(teacher_model, spec, d_model, encoder_ffn, decoder_ffn, config.max_source_positions),
        strict=True)
    student.generation_config, alignment = _generation_config(
        teacher_model.generation_config, spec.decoder_layers, config.decoder_attention_heads
    )

    widths = []
    if (encoder_ffn, decoder_ffn) != (teacher.encoder_ffn_dim, teacher.decoder_ffn_dim):
        teacher_ffn = (f"{teacher.encoder_ffn_dim}" if teacher.encoder_ffn_dim == teacher.decoder_ffn_dim
                       else f"{teacher.encoder_ffn_dim} (encoder) / {teacher.decoder_ffn_dim} (decoder)")
        widths.append(f"ffn: kept the {spec.ffn_dim} of {teacher_ffn} neurons per layer with the "
                      f"largest ||fc1 row||·||fc2 col||")
    if d_model != teacher.d_model:
        head_cuts = " and ".join(f"first {d_model // n} of {teacher.d_model // n} coordinates ({side})"
                                 for side, n in heads.items())
        widths.append(
            f"d_model: kept {d_model} of {teacher.d_model} residual dimensions by magnitude (encoder: "
            f"largest ||conv2 output row||, conv1 channels by ||conv1 row||·||conv2 col||; decoder: "
            f"largest mean |token embedding|); attention heads keep their {head_cuts}"
        )
    shape = ("encoder_layers", "decoder_layers", "d_model", "encoder_ffn_dim", "decoder_ffn_dim")
    provenance = {
        "encoder_layers": list(spec.encoder_layers),  # student layer i copies teacher layer [i]
        "decoder_layers": list(spec.decoder_layers),
        "teacher_shape": {k: getattr(teacher, k) for k in shape},
        "student_shape": {k: getattr(config, k) for k in shape},
        "width_initialisation": widths or ["none: the teacher's widths, layers copied exactly"],
        "alignment_heads": alignment,
        "window_seconds": {"teacher": teacher_window, "student": window},
        "pad_step_seconds": spec.pad_step_seconds,  # None: clips padded to the window
        "trailing_silence_seconds": spec.trailing_silence_seconds,  # zeros after each clip, at least
    }
    return student, provenance


def read_student_record(folder: str | Path) -> dict | None:
    """The ``student.json`` of a model folder (provenance: the teacher it was built from, its
    layers, ...); None for a folder without one (a plain Whisper). A ModelLoadError naming the file
    when it is not a JSON object whose ``teacher`` names a source and a fingerprint."""
    path = Path(folder).expanduser() / STUDENT_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelLoadError(f"{path}: damaged, not JSON ({err}); copy the student folder again, or make it "
                             f"again with `voxdistill student init`") from None
    teacher = record.get("teacher") if isinstance(record, dict) else None
    if not (isinstance(teacher, dict) and all(isinstance(teacher.get(k), str) for k in ("source", "fingerprint"))):
        raise ModelLoadError(f"{path}: damaged: it must be a JSON object whose \"teacher\" gives the teacher's "
                             f"\"source\" and \"fingerprint\"; copy the student folder again, or make it again "
                             f"with `voxdistill student init`")
    return record


def recorded_teacher(folder: Path) -> dict | None:
    """The teacher a student folder was built from, as its ``student.json`` records it
    (``{"source": ..., "fingerprint": ...}``); None for a folder without one (a plain Whisper)."""
    record = read_student_record(folder)
    return None if record is None else record["teacher"]


def save_student(student_model: WhisperForConditionalGeneration, processor: WhisperProcessor,
                 provenance: dict, teacher_source: str, teacher_fingerprint: str, out: Path) -> Path:
    """Write ``out`` as a Hugging Face Whisper folder (model, generation config, tokenizer, feature
    extractor) plus ``student.json``, atomically: written under a temporary name, then renamed."""
    out = Path(out)
    check_new_folder(out)
    fe = processor.feature_extractor
    window = window_seconds(student_model.config)
    # A record without the key (made before clip-length padding, or by hand) keeps the processor's.
    pad_step = (provenance["pad_step_seconds"] if "pad_step_seconds" in provenance
                else clip_pad_step(fe) and clip_pad_step(fe) / SAMPLE_RATE)
    trailing = provenance.get("trailing_silence_seconds", clip_trailing_samples(fe) / SAMPLE_RATE)
    if (fe.chunk_length != window or clip_pad_step(fe) != (pad_step and pad_step_samples(pad_step))
            or clip_trailing_samples(fe) != trailing_samples(trailing, pad_step)):
        # features fill the window, or follow the clip
        processor = windowed_processor(processor, window, pad_step, trailing)
    with folder_written_atomically(out) as tmp:
        student_model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        # transformers 5 saves the processor as processor_config.json; faster-whisper, CTranslate2's
        # converter and older tools read the window from preprocessor_config.json.
        processor.feature_extractor.save_pretrained(tmp)
        record = {"teacher": {"source": teacher_source, "fingerprint": teacher_fingerprint}, **provenance}
        (tmp / STUDENT_FILE).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    return out
