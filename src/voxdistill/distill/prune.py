"""Structured pruning of a trained Whisper student: feed-forward neurons removed by measured importance.

Each encoder and decoder layer's feed-forward block is ``fc2(act(fc1(x)))``. Neuron j of a layer adds
``a_j · fc2.weight[:, j]`` to the residual stream, where ``a_j`` is its activation. Removing it changes
the layer's output by that vector, so its importance is the expected size of that change, estimated
on calibration audio as ``mean |a_j| · ||fc2.weight[:, j]||₂`` (first order: what the layers after it
would do with the change is ignored). The model runs teacher-forced on the calibration clips along
the labels training would use (``distill.batches``: the reference transcript where an utterance has
one, else its pseudo-label), and ``a_j`` is read at the input of fc2 over every encoder position (the
padded ones too: the decoder attends to all of them) and every real decoder position (prompt and
label tokens, not padding). Unlike ``student init``'s ``||fc1 row|| · ||fc2 column||``, this sees a
neuron that is large but never fires, or fires only on inputs the model never gets.

The same number of neurons is kept in every layer of a stack, because a Hugging Face WhisperConfig
has one ``encoder_ffn_dim`` and one ``decoder_ffn_dim``; each layer keeps its own best neurons, in
their original order (fc1 rows and bias, fc2 columns). The result is a smaller dense model: the
matrix products shrink, so the CPU does less work in any runtime, PyTorch and CTranslate2 alike
(unstructured sparsity, zeros inside dense matrices, would not make them faster, so it is not done).

Attention heads are not pruned. Whisper's attention has one head count per stack and a head width of
``d_model / heads``, with q/k/v/out projections of ``d_model × d_model``: removing heads from one
layer needs per-layer head counts, and removing the same heads everywhere needs projections narrower
than ``d_model``; neither transformers' Whisper nor CTranslate2's Whisper spec can load such a model.
Narrowing every head means narrowing ``d_model`` (``student init --d-model``). The feed-forward blocks
hold 8·d² of an encoder layer's 12·d² weights and of a decoder layer's 16·d², so they are where
structured pruning pays: halving them cuts a third of the encoder's matrix work per position. Per
decoded token the gain is smaller, since the output projection over the vocabulary (51,864 × d for
tiny.en, several times a decoder layer's feed-forward block) and the decoding loop stay as they were;
``benchmarks/prune.py`` measures what it comes to on a CPU.

The pruned model is saved as a student folder (``models.student.save_student``) whose ``student.json``
is the source's record, its shape updated, plus a ``pruned`` entry saying how. A short distillation
run (``configs/prune-recover.yaml``) recovers most of what pruning costs.
"""

from __future__ import annotations

import copy
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from tqdm import tqdm
from transformers import WhisperForConditionalGeneration

from voxdistill.audio import SAMPLE_RATE, audio_duration, load_audio
from voxdistill.data.dataset import length_groups, log_mel
from voxdistill.data.manifest import ManifestError, Utterance, read_manifest, scan_manifest
from voxdistill.decoding import prompt_tokens
from voxdistill.distill.batches import LabelError, build_decoder_batch
from voxdistill.distill.losses import IGNORE_INDEX
from voxdistill.errors import VoxdistillError
from voxdistill.files import check_new_folder, sha256_of_files
from voxdistill.models.loading import Whisper, load_whisper
from voxdistill.models.student import ffn_state, largest, read_student_record, save_student, window_seconds
from voxdistill.models.vocabulary import RECORD_KEY as VOCABULARY_KEY, VocabularyError, recorded_vocabulary, trim_vocabulary

METHOD = ("feed-forward neurons by measured importance: mean |activation| at the input of fc2 × "
          "||fc2 column||₂, teacher-forced on the calibration clips; the same count kept in every layer")
HEADS_NOT_PRUNED = ("one head count per stack and head width d_model/heads in Whisper's config: "
                    "transformers and CTranslate2 cannot load per-layer heads")
TRIM_METHOD = ("the ordinary tokens of the first ids, i.e. byte-pair encoding stopped after fewer merges; "
               "special tokens renumbered to follow them; kept tokens' embedding rows unchanged")
# The label stream of calibration utterances, as training picks it (distill.batches).
CALIBRATION_LABELS = "prefer_reference"


class PruneError(VoxdistillError):
    """A pruning option is impossible for the model, the calibration set is unusable, or the output
    folder is taken."""


@dataclass(frozen=True)
class FfnImportance:
    encoder: tuple[Tensor, ...]  # per encoder layer, (encoder_ffn_dim,): mean |a_j| · ||fc2[:, j]||
    decoder: tuple[Tensor, ...]  # per decoder layer, (decoder_ffn_dim,)
    clips: int  # calibration clips measured
    encoder_positions: int  # encoder positions averaged over, per layer
    decoder_tokens: int  # decoder positions averaged over, per layer (prompt and label tokens)
    label_sources: dict[str, int]  # calibration clips per label stream: reference | pseudo_label


def _check_options(keep: float | None, encoder_ffn_dim: int | None, decoder_ffn_dim: int | None) -> None:
    """What can be refused before the model is loaded."""
    if keep is not None and (encoder_ffn_dim is not None or decoder_ffn_dim is not None):
        raise PruneError("--ffn-keep and --encoder-ffn-dim/--decoder-ffn-dim both given; give a fraction "
                         "for both stacks, or the widths")
    if keep is None and encoder_ffn_dim is None and decoder_ffn_dim is None:
        raise PruneError("nothing to prune: give --ffn-keep (a fraction of each layer's neurons), or "
                         "--encoder-ffn-dim and/or --decoder-ffn-dim (neurons kept per layer)")
    if keep is not None and not 0 < keep <= 1:  # also refuses nan
        raise PruneError(f"--ffn-keep {keep}: the fraction of neurons kept must be above 0 and at most 1")
    for option, dim in (("--encoder-ffn-dim", encoder_ffn_dim), ("--decoder-ffn-dim", decoder_ffn_dim)):
        if dim is not None and dim < 1:
            raise PruneError(f"{option} {dim}: a layer keeps at least 1 neuron")


def ffn_targets(config, keep: float | None = None, encoder_ffn_dim: int | None = None,
                decoder_ffn_dim: int | None = None) -> tuple[int, int]:
    """Neurons kept per (encoder, decoder) layer of a Whisper ``config``: ``keep`` of each layer's
    (rounded, at least 1), or the widths given (a stack without one keeps its own)."""
    _check_options(keep, encoder_ffn_dim, decoder_ffn_dim)
    sizes = (config.encoder_ffn_dim, config.decoder_ffn_dim)
    if keep is not None:
        return tuple(max(1, math.floor(keep * size + 0.5)) for size in sizes)
    targets = (encoder_ffn_dim or sizes[0], decoder_ffn_dim or sizes[1])
    for option, side, target, size in zip(("--encoder-ffn-dim", "--decoder-ffn-dim"), ("encoder", "decoder"),
                                          targets, sizes):
        if target > size:
            raise PruneError(f"{option} {target}: the model has {size} neurons per {side} layer; "
                             f"choose from 1 to {size}")
    return targets


def calibration_utterances(manifest: Path, clips: int) -> list[Utterance]:
    """``clips`` utterances spread evenly over ``manifest`` (all of them if it holds fewer), so that
    a manifest sorted by voice or domain is sampled across."""
    if clips < 1:
        raise PruneError(f"--clips {clips}: measure on at least 1 clip")
    manifest = Path(manifest)
    try:
        total = scan_manifest(manifest).utterances
    except ManifestError as err:
        raise PruneError(f"--calibration: {err}") from None
    n = min(clips, total)
    wanted = {i * total // n for i in range(n)}
    return [utt for i, utt in enumerate(read_manifest(manifest)) if i in wanted]


@torch.inference_mode()
def measure_ffn_importance(whisper: Whisper, utterances: list[Utterance], manifest_dir: Path,
                           batch_size: int = 8, progress: bool = False) -> FfnImportance:
    """Every feed-forward neuron's importance (see the module docstring) over ``utterances``, whose
    relative audio paths are relative to ``manifest_dir``."""
    model = whisper.model
    fe = whisper.processor.feature_extractor
    window = fe.n_samples / SAMPLE_RATE
    stacks = {"encoder": model.model.encoder.layers, "decoder": model.model.decoder.layers}
    sums = {side: [torch.zeros(layer.fc2.in_features, dtype=torch.float64) for layer in layers]
            for side, layers in stacks.items()}
    counts = {"encoder": 0, "decoder": 0}
    real_positions: dict[str, Tensor] = {}  # "decoder": (B, L) the current batch's real decoder positions

    def meter(side: str, i: int):
        def hook(module, inputs):
            activations = inputs[0].abs()  # (B, T, ffn_dim), after fc1 and the activation
            if side == "decoder":
                activations = activations[real_positions["decoder"]]  # (tokens, ffn_dim)
            sums[side][i] += activations.reshape(-1, activations.shape[-1]).sum(dim=0, dtype=torch.float64)
        return hook

    hooks = [layer.fc2.register_forward_pre_hook(meter(side, i))
             for side, layers in stacks.items() for i, layer in enumerate(layers)]
    prompt = prompt_tokens(whisper)
    eot = model.generation_config.eos_token_id
    sources: Counter = Counter()
    bar = tqdm(total=len(utterances), desc="measure neuron importance", unit="clip", disable=not progress)
    try:
        for start in range(0, len(utterances), batch_size):
            batch = utterances[start : start + batch_size]
            audios = []
            for utt in batch:
                path = utt.audio_path(manifest_dir)
                if audio_duration(path) > window:
                    raise PruneError(f"--calibration: {path} ({utt.id}) is longer than the model's {window:g} s "
                                     f"window; calibrate on clips that fit it")
                audios.append(load_audio(path, max_seconds=None))
            try:
                labels = build_decoder_batch(batch, whisper.processor.tokenizer, prompt, eot,
                                             model.config.max_target_positions, CALIBRATION_LABELS,
                                             own_tokens=whisper.folder is not None
                                             and recorded_vocabulary(whisper.folder) is not None)
            except LabelError as err:
                raise PruneError(f"--calibration: {err}") from None
            sources.update(labels.sources)
            real = labels.labels != IGNORE_INDEX  # the label positions; the prompt's come before them
            real[:, : len(prompt) - 1] = True
            # Clips a clip-length model pads alike run together, each read as it is when transcribed.
            for rows in length_groups(fe, [len(a) for a in audios]):
                real_positions["decoder"] = real[rows]
                features = log_mel(fe, [audios[i] for i in rows]).to(model.device, model.dtype)
                out = model.model(input_features=features, use_cache=False,
                                  decoder_input_ids=labels.decoder_input_ids[rows].to(model.device))
                counts["encoder"] += out.encoder_last_hidden_state.shape[0] * out.encoder_last_hidden_state.shape[1]
            counts["decoder"] += int(real.sum())
            bar.update(len(batch))
    finally:
        for hook in hooks:
            hook.remove()
        bar.close()
    scores = {side: tuple((total / counts[side]).float() * layer.fc2.weight.norm(dim=0)
                          for total, layer in zip(sums[side], stacks[side]))
              for side in stacks}
    return FfnImportance(scores["encoder"], scores["decoder"], clips=len(utterances),
                         encoder_positions=counts["encoder"], decoder_tokens=counts["decoder"],
                         label_sources=dict(sources))


@torch.no_grad()
def prune_ffn(model: WhisperForConditionalGeneration, importance: FfnImportance, encoder_ffn_dim: int,
              decoder_ffn_dim: int) -> tuple[WhisperForConditionalGeneration, dict[str, list[float]]]:
    """A copy of ``model`` whose every encoder (decoder) layer keeps its ``encoder_ffn_dim``
    (``decoder_ffn_dim``) most important neurons, and per stack the share of each layer's total
    importance that its kept neurons hold."""
    config = copy.deepcopy(model.config)
    config.encoder_ffn_dim, config.decoder_ffn_dim = encoder_ffn_dim, decoder_ffn_dim
    residual = torch.arange(config.d_model)
    state = dict(model.state_dict())
    kept_share: dict[str, list[float]] = {}
    for side, layers, scores, k in (("encoder", model.model.encoder.layers, importance.encoder, encoder_ffn_dim),
                                    ("decoder", model.model.decoder.layers, importance.decoder, decoder_ffn_dim)):
        kept_share[side] = []
        for i, (layer, score) in enumerate(zip(layers, scores)):
            neurons = largest(score, k)
            state |= ffn_state(f"model.{side}.layers.{i}", layer, residual, neurons)
            kept_share[side].append(round(float(score[neurons].sum() / score.sum()), 4))
    pruned = WhisperForConditionalGeneration(config)
    pruned.load_state_dict(state, strict=True)
    pruned.generation_config = copy.deepcopy(model.generation_config)
    pruned.eval()
    return pruned, kept_share


def _source_record(model: str, whisper: Whisper) -> dict:
    """The source's ``student.json``; for a plain Whisper (a teacher), a record naming it as its own
    teacher, so that distilling the pruned copy from its pseudo-labels passes the consistency rule."""
    if (record := read_student_record(model)) is not None:
        return record
    config = whisper.model.config
    window = window_seconds(config)
    return {"teacher": {"source": model, "fingerprint": whisper.fingerprint.digest},
            "encoder_layers": list(range(config.encoder_layers)), "decoder_layers": list(range(config.decoder_layers)),
            "teacher_shape": _shape(config), "window_seconds": {"teacher": window, "student": window}}


def _shape(config) -> dict:
    return {key: getattr(config, key)
            for key in ("encoder_layers", "decoder_layers", "d_model", "encoder_ffn_dim", "decoder_ffn_dim")}


def prune_student(model: str, calibration: Path, out: Path, *, clips: int = 64, keep: float | None = None,
                  encoder_ffn_dim: int | None = None, decoder_ffn_dim: int | None = None, batch_size: int = 8,
                  progress: bool = True) -> tuple[Path, dict]:
    """Prune ``model`` (any argument of ``load_whisper``) to the fraction ``keep`` of every layer's
    feed-forward neurons, or to the widths given, measuring importance on ``clips`` clips of
    ``calibration``; save it as a student folder ``out``. Returns ``out`` and its ``student.json`` record."""
    _check_options(keep, encoder_ffn_dim, decoder_ffn_dim)
    out, calibration = Path(out), Path(calibration)
    check_new_folder(out)
    utterances = calibration_utterances(calibration, clips)
    whisper = load_whisper(model)
    config = whisper.model.config
    targets = ffn_targets(config, keep, encoder_ffn_dim, decoder_ffn_dim)
    importance = measure_ffn_importance(whisper, utterances, calibration.parent, batch_size, progress)
    pruned, kept_share = prune_ffn(whisper.model, importance, *targets)

    record = _source_record(model, whisper)
    teacher = record.pop("teacher")
    record["student_shape"] = _shape(pruned.config)
    record["pruned"] = {
        "method": METHOD,
        "source": model,
        "source_fingerprint": whisper.fingerprint.digest,
        "calibration": {"manifest": str(calibration), "sha256": sha256_of_files([calibration]),
                        "clips": importance.clips, "labels": importance.label_sources,
                        "encoder_positions": importance.encoder_positions,
                        "decoder_tokens": importance.decoder_tokens},
        "keep": keep,
        "encoder_ffn_dim": {"before": config.encoder_ffn_dim, "after": targets[0]},
        "decoder_ffn_dim": {"before": config.decoder_ffn_dim, "after": targets[1]},
        "parameters": {"before": sum(p.numel() for p in whisper.model.parameters()),
                       "after": sum(p.numel() for p in pruned.parameters())},
        # Per layer: the share of the layer's summed importance that its kept neurons hold.
        "kept_importance": kept_share,
        "attention_heads": f"not pruned: {HEADS_NOT_PRUNED}",
    }
    save_student(pruned, whisper.processor, record, teacher_source=teacher["source"],
                 teacher_fingerprint=teacher["fingerprint"], out=out)
    return out, {"teacher": teacher, **record}


def trim_student(model: str, vocabulary: int, out: Path) -> tuple[Path, dict]:
    """``model`` with its vocabulary trimmed to ``vocabulary`` ordinary tokens and all its special ones
    (`models.vocabulary`), saved as a student folder ``out``. Returns ``out`` and its record."""
    out = Path(out)
    check_new_folder(out)
    if (earlier := read_student_record(model)) is not None and VOCABULARY_KEY in earlier:
        raise PruneError(f"{model}: its vocabulary was trimmed already ({earlier[VOCABULARY_KEY]['map']}); trim "
                         f"its untrimmed source instead")
    whisper = load_whisper(model)
    try:
        trimmed, tokenizer, vocab_map = trim_vocabulary(whisper.model, whisper.processor.tokenizer, vocabulary)
    except VocabularyError as err:
        raise PruneError(f"{model}: --vocabulary {vocabulary}: {err}") from None
    record = _source_record(model, whisper)
    teacher = record.pop("teacher")
    record[VOCABULARY_KEY] = {
        "method": TRIM_METHOD, "source": model, "source_fingerprint": whisper.fingerprint.digest,
        "map": vocab_map.to_dict(),
        "parameters": {"before": sum(p.numel() for p in whisper.model.parameters()),
                       "after": sum(p.numel() for p in trimmed.parameters())},
    }
    processor = copy.copy(whisper.processor)
    processor.tokenizer = tokenizer
    save_student(trimmed, processor, record, teacher_source=teacher["source"],
                 teacher_fingerprint=teacher["fingerprint"], out=out)
    return out, {"teacher": teacher, **record}
