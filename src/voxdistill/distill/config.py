"""The distillation run config: YAML in (``voxdistill distill --config FILE --set key=value``),
typed frozen dataclasses, validated before any model is loaded, saved resolved with the run."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from voxdistill.distill.curriculum import KDDecay, SelfDistillConfig
from voxdistill.distill.losses import LossWeights


@dataclass(frozen=True)
class DataConfig:
    train_manifest: Path  # gold transcripts, or pseudo_labels.jsonl from `voxdistill pseudo-label`
    dev_manifest: Path | None = None  # scored by WER every eval.every_steps
    # What each utterance learns from (CE, and the teacher's KL along the same tokens):
    # prefer_reference = its reference transcript where it has one, else its pseudo-label;
    # reference = references only (an utterance without one stops the run);
    # pseudo_label = the teacher's transcript only (a pseudo-label manifest).
    labels: Literal["prefer_reference", "reference", "pseudo_label"] = "prefer_reference"
    batch_size: int = 8  # utterances per micro-batch (per process)
    bucket_size: int = 64  # utterances sorted by length together
    shuffle_buffer: int = 256  # bounded shuffle of the streamed manifest
    augment: bool = False  # on-the-fly noise and gain

    def __post_init__(self):
        if self.batch_size < 1 or self.bucket_size < self.batch_size:
            raise ValueError("need batch_size >= 1 and bucket_size >= batch_size")


@dataclass(frozen=True)
class TeacherConfig:
    # none: cross-entropy only. online: the teacher runs in the loop (full distributions).
    # offline: the top-k cache written by `pseudo-label` (no teacher in memory).
    mode: Literal["none", "online", "offline"] = "offline"
    model: str | None = None  # online: the teacher; offline: optional, checked against the cache
    pseudo_labels: Path | None = None  # pseudo-label folder; default: the train manifest's folder
    allow_mismatch: bool = False  # distil although fingerprints differ (recorded in the run)

    def __post_init__(self):
        if self.mode == "online" and not self.model:
            raise ValueError("mode online needs teacher.model")


@dataclass(frozen=True)
class LossConfig:
    ce_weight: float = 1.0  # on the cross-entropy against the labels
    kd_weight: float = 1.0  # on T² · KL(teacher ‖ student), at step 0
    temperature: float = 2.0  # softens both distributions in the KL term
    kd_decay: KDDecay = field(default_factory=KDDecay)  # ASKD phase 1: how kd_weight decays
    # On the mean squared distance between the student's final encoder states and the teacher's over
    # the student's window (the teacher reading its own 30 s window), divided by the teacher states'
    # mean square: keeps a student encoder with a shorter window, or one reading each clip at its own
    # length, close to the teacher's behaviour, position by position.
    encoder_kd_weight: float = 0.0
    # Which positions that term compares: "window", all of the student's (a clip-length student's
    # clip and the padding after it); "clip", only those holding the clip, leaving the padding's
    # states to what the token terms ask of them (the decoder's cross-attention spreads over fewer
    # padding positions than after the teacher's 30 s window).
    encoder_kd_span: Literal["window", "clip"] = "window"
    # On Σ (θ − θ₀)² over the trainable weights, θ₀ the student as loaded from its folder (L2-SP): an
    # anchor that pulls training back toward the starting point, which for a student built from the
    # teacher's layers is what the teacher knows. 0 = off.
    anchor_weight: float = 0.0

    def weights(self, kd_weight: float | None = None) -> LossWeights:
        return LossWeights(self.ce_weight, self.kd_weight if kd_weight is None else kd_weight, self.temperature)

    def __post_init__(self):
        self.weights()  # validates
        for key in ("encoder_kd_weight", "anchor_weight"):
            value = getattr(self, key)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{key} must be a finite number >= 0, got {value}")


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 1e-4  # peak learning rate (AdamW)
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.98)
    warmup_steps: int = 50  # linear warm-up from 0
    schedule: Literal["constant", "linear", "cosine"] = "linear"  # decay after warm-up
    min_lr_ratio: float = 0.0  # the decay ends at lr · min_lr_ratio
    max_steps: int = 500  # optimizer steps
    grad_accum: int = 1  # micro-batches per optimizer step
    clip_grad_norm: float | None = 1.0  # None: no clipping (the norm is still checked and logged)
    freeze_encoder: bool = False  # train the decoder only
    # Train the encoder only (Whisper students): the decoder, its embeddings and the output projection
    # stay the teacher's, so what it knows of English text cannot be forgotten while the encoder learns
    # to give, at the student's window, the states the decoder reads at the teacher's (whisper-acft).
    freeze_decoder: bool = False
    # The encoder's learning rate as a share of ``lr`` when it trains: a student encoder that must
    # learn to read clips at their own length should move a little, not relearn (whisper-acft
    # adapts Whisper's encoder to short contexts at lr 1e-6).
    encoder_lr_scale: float = 1.0
    # A partly frozen encoder: its convolutional stem (the two convolutions that turn log-mel frames
    # into states; local, so a clip's stem features are the same whatever padding follows it) and its
    # first ``frozen_encoder_layers`` transformer layers keep the weights they were loaded with.
    freeze_encoder_stem: bool = False
    frozen_encoder_layers: int = 0
    # With a frozen encoder and unaugmented audio, compute each utterance's encoder states once
    # (RUN/encoder-cache/) instead of every epoch; offline KD or CE only.
    cache_frozen_encoder: bool = True
    # Keep the decoder's token and position embeddings (and the output projection tied to them) as
    # the teacher's: on little data, updating 20M+ embedding weights overfits the training text.
    freeze_embeddings: bool = False
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"  # autocast; fp16 needs a GPU
    # Quantisation-aware training for int8 deployment (CTranslate2 int8): every linear layer computes
    # with int8-rounded weights and inputs, as CTranslate2 does, gradients passing straight through;
    # the exported student holds the float weights, which the int8 conversion then rounds. Whisper
    # students only.
    quantization_aware: bool = False
    # Low-rank adapters (LoRA, models/lora.py): with a rank above 0, every linear weight that would
    # train stays as loaded and a rank-``lora_rank`` update, scaled by lora_alpha / lora_rank, trains
    # in its place; the exported student has it folded in. The freeze settings still choose which
    # layers adapt; every other weight (norms, biases, the convolutional stem, embeddings) is frozen.
    lora_rank: int = 0
    lora_alpha: float = 16.0

    def __post_init__(self):
        if self.lora_rank < 0 or not (math.isfinite(self.lora_alpha) and self.lora_alpha > 0):
            raise ValueError(f"need lora_rank >= 0 (0: no adapters) and a finite lora_alpha > 0, got "
                             f"{self.lora_rank} and {self.lora_alpha}")
        if self.lora_rank and self.quantization_aware:
            raise ValueError("optim.lora_rank and optim.quantization_aware both parametrize every linear weight; "
                             "train the adapters first, then run quantization-aware training on the exported student")
        if self.lr <= 0 or self.max_steps < 1 or self.grad_accum < 1 or self.warmup_steps < 0:
            raise ValueError("need lr > 0, max_steps >= 1, grad_accum >= 1, warmup_steps >= 0")
        if self.freeze_encoder and self.freeze_decoder:
            raise ValueError("optim.freeze_encoder and optim.freeze_decoder are both true: nothing would train")
        if self.frozen_encoder_layers < 0:
            raise ValueError(f"frozen_encoder_layers must be >= 0, got {self.frozen_encoder_layers}")
        if not (math.isfinite(self.encoder_lr_scale) and self.encoder_lr_scale > 0):
            raise ValueError(f"encoder_lr_scale must be a finite number > 0, got {self.encoder_lr_scale}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"min_lr_ratio must be within [0, 1], got {self.min_lr_ratio}")


@dataclass(frozen=True)
class EvalConfig:
    every_steps: int = 100  # dev WER this often, before the first step and at the end; 0 = only at the end
    max_utterances: int | None = None  # score only the first N dev utterances (speed)
    batch_size: int = 8
    num_beams: int = 1


@dataclass(frozen=True)
class CheckpointConfig:
    every_steps: int = 100  # also at the end, and on SIGINT/SIGTERM
    keep_last: int = 2  # the best-by-dev-WER checkpoint is always kept besides these

    def __post_init__(self):
        if self.every_steps < 1 or self.keep_last < 1:
            raise ValueError("need every_steps >= 1 and keep_last >= 1")


@dataclass(frozen=True)
class DistillConfig:
    student: Path  # a Hugging Face Whisper folder, e.g. from `voxdistill student init`
    out: Path  # run folder: checkpoints, logs, resolved config
    data: DataConfig
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    self_distill: SelfDistillConfig = field(default_factory=SelfDistillConfig)  # ASKD phase 2
    seed: int = 0
    log_every: int = 10  # steps between progress-bar and log lines (every step goes to the JSONL log)

    def __post_init__(self):
        # Combinations in which a setting would be silently ignored are refused here, at start-up.
        if self.teacher.mode == "none" and self.loss.kd_weight > 0:
            raise ValueError(f"loss.kd_weight is {self.loss.kd_weight} but teacher.mode is none: there is no "
                             f"teacher for the KL term; set loss.kd_weight=0, or teacher.mode online or offline")
        if self.loss.encoder_kd_weight > 0 and self.teacher.mode == "none":
            raise ValueError("loss.encoder_kd_weight needs a teacher: set teacher.mode online or offline")
        if self.loss.encoder_kd_weight > 0 and self.optim.freeze_encoder:
            raise ValueError("loss.encoder_kd_weight trains the encoder, but optim.freeze_encoder is true; "
                             "set one of them off")
        if self.optim.lora_rank and self.loss.anchor_weight > 0:
            raise ValueError("loss.anchor_weight pulls the trainable weights toward their start, but with "
                             "optim.lora_rank those are the adapters, not the student's weights (which the "
                             "adapters already keep as loaded); set one of them off")
        if self.optim.lora_rank and self.self_distill.start_step is not None and self.self_distill.teacher == "ema":
            raise ValueError("self_distill.teacher=ema averages each trainable weight, and with optim.lora_rank "
                             "those are the two factors of each update, whose averages do not multiply to the "
                             "average update; use self_distill.teacher=snapshot")
        start = self.self_distill.start_step
        if start is not None and start >= self.optim.max_steps:
            raise ValueError(f"self_distill.start_step ({start}) must be below optim.max_steps ({self.optim.max_steps})")
