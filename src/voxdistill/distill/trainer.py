"""The distillation trainer: one loop for CE-only, online KD and offline KD, on one CPU process or
many processes through ``accelerate``, for every student family. `Trainer` owns the loop, the
curriculum, checkpoints, resume, logging and export; each family's trainer says how its student
loads, what its loss is, how it transcribes the dev set and how it is saved
(`distill.whisper_trainer.WhisperTrainer`, `distill.ctc_trainer.CTCTrainer`). The student's family
picks its trainer (`families.distill`); this module names none.

Reliability, in the order a run meets it:
- the config and the teacher-consistency rule are checked before any training, and a run folder is
  resumed only with the settings it was last run with (or with ``allow_config_change``, recorded);
- a resumed run restores model, optimizer, step, data position (epoch, batches consumed), best
  WER, curriculum phase and every process's RNG, so N straight steps equal k + (N − k) resumed;
  what was logged after the checkpoint it resumes from is dropped (see ``run_log``);
- the learning rate is a pure function of the step, so it needs no saved scheduler;
- a non-finite loss or gradient norm stops the step before the optimizer update, naming the step
  and the utterance ids; the last checkpoint is intact;
- SIGINT/SIGTERM finish the current step, write a checkpoint and exit non-zero;
- the exported ``out/model`` is the best by dev WER (a checkpoint, the starting student when no
  trained step beats it, or the ASKD EMA self-teacher when it scores lower), or the last step
  without a dev set; its ``student.json`` says which.
"""

from __future__ import annotations

import copy
import json
import math
import signal
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import gather_object, set_seed
from torch.nn.utils import parametrize
from tqdm import tqdm

from voxdistill.config import SettingChange, save_config
from voxdistill.data.dataset import Augmentation, BatchingConfig, SpeechDataset, clip_pad_step, log_mel
from voxdistill.data.manifest import scan_manifest
from voxdistill.decoding import DecodingOptions, SpeechChecks
from voxdistill.distill.batches import count_label_sources
from voxdistill.distill.checkpoint import (
    TrainerState, checkpoint_dir, complete_checkpoints, load_checkpoint, load_weights, prune_checkpoints,
    resume_config_changes, rng_state, save_checkpoint, set_rng_state,
)
from voxdistill.distill.config import DistillConfig
from voxdistill.distill.consistency import TeacherMismatchError, TeacherSource, resolve_teacher
from voxdistill.distill.curriculum import PHASE_SELF, ema_update, kd_weight_at, phase_at
from voxdistill.distill.encoder_cache import EncoderStateCache
from voxdistill.distill.losses import LossParts, LossWeights, anchor_distance
from voxdistill.distill.run_log import RunLog
from voxdistill.errors import Interrupted, VoxdistillError
from voxdistill.files import folder_written_atomically, write_text_atomic
from voxdistill.models.fingerprint import weights_sha256
from voxdistill.models.lora import add_lora, merge_lora
from voxdistill.models.student import STUDENT_FILE, read_student_record
from voxdistill.scoring.metrics import word_error_rate
from voxdistill.transcribe import transcribe_manifest


class NonFiniteError(VoxdistillError):
    """The loss or gradient norm is NaN or infinite; the step was not applied."""


class TrainingInterrupted(Interrupted):
    """SIGINT or SIGTERM arrived; a checkpoint of the finished step was written."""

    def __init__(self, signum: int, step: int, checkpoint: Path):
        super().__init__(f"the run stopped after step {step}, saved in {checkpoint}", signum=signum)


class FrozenLayersError(VoxdistillError):
    """optim.frozen_encoder_layers names more layers than the student's encoder has."""


class AdapterError(VoxdistillError):
    """optim.lora_rank asks for adapters where no linear layer of the student trains."""


def freeze_encoder_front(encoder: torch.nn.Module, config: DistillConfig) -> None:
    """Keep the front of a Whisper encoder (a Whisper student's or a CTC student's) as loaded:
    ``optim.freeze_encoder_stem`` its two convolutions, ``optim.frozen_encoder_layers`` its first
    layers. (Its position embeddings never train.)"""
    optim = config.optim
    layers = encoder.layers
    if optim.frozen_encoder_layers > len(layers):
        raise FrozenLayersError(f"optim.frozen_encoder_layers is {optim.frozen_encoder_layers}, but the encoder of "
                                f"{config.student} has {len(layers)} layers")
    if optim.freeze_encoder_stem:
        encoder.conv1.requires_grad_(False)
        encoder.conv2.requires_grad_(False)
    for layer in layers[:optim.frozen_encoder_layers]:
        layer.requires_grad_(False)


def lr_factor(step: int, warmup_steps: int, max_steps: int, schedule: str, min_ratio: float) -> float:
    """Multiplier of the peak learning rate for optimizer step ``step`` (0-based): linear warm-up,
    then constant, linear or cosine decay to ``min_ratio`` at ``max_steps``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    progress = min((step - warmup_steps) / max(max_steps - warmup_steps, 1), 1.0)
    decay = 1 - progress if schedule == "linear" else 0.5 * (1 + math.cos(math.pi * progress))
    return min_ratio + (1 - min_ratio) * decay


@dataclass
class TrainResult:
    state: TrainerState
    out: Path  # the run folder; the trained student is out/model once max_steps is reached
    last_checkpoint: Path
    losses: list[float]  # total loss of every step this process ran


class _StopFlag:
    """Turns SIGINT/SIGTERM into a flag checked between steps."""

    def __init__(self):
        self.signum: int | None = None
        self.previous = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        self.signum = signum

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


class Trainer:
    def __init__(self, config: DistillConfig, allow_config_change: bool = False):
        self.config = config
        # Before anything is loaded: a run folder is resumed with its own settings, or told otherwise.
        self.config_changes: list[SettingChange] = resume_config_changes(config, allow_config_change)
        self.accelerator = Accelerator(cpu=not torch.cuda.is_available(),
                                       mixed_precision=config.optim.mixed_precision)
        set_seed(config.seed)
        # Manifests are read whole before any model loads: a repeated id, an empty file or missing
        # audio fails in seconds.
        for manifest in (config.data.train_manifest, config.data.dev_manifest):
            if manifest is not None:
                scan_manifest(manifest).refuse_missing_audio()
        student = self._load_student()  # sets self.feature_extractor
        # Every utterance has the label the run asks for, or the run stops here, naming it.
        self.label_sources = count_label_sources(config.data.train_manifest, config.data.labels)
        self.teacher: TeacherSource = resolve_teacher(config, self.feature_extractor, self._vocab_size(student),
                                                      self.label_sources)
        if self.teacher.whisper is not None:
            self.teacher.whisper.model.to(self.accelerator.device)
        # A student with a shorter window, or one encoding each clip at its own length: an online
        # teacher computes its own 30 s features.
        self.teacher_windowed = self.teacher.whisper is not None and (
            self.teacher.whisper.processor.feature_extractor.n_samples != self.feature_extractor.n_samples
            or clip_pad_step(self.feature_extractor) is not None)
        if config.optim.freeze_encoder:
            self._encoder_of(student).requires_grad_(False)
        else:
            freeze_encoder_front(self._encoder_of(student), config)
        self._freeze_more(student)
        if config.optim.lora_rank:
            try:
                add_lora(student, config.optim.lora_rank, config.optim.lora_alpha)
            except ValueError as err:
                raise AdapterError(f"optim.lora_rank={config.optim.lora_rank} on {config.student}: {err}") from None
        # θ₀ of the anchor term: the trainable weights as loaded from the student folder (a resumed
        # run loads its checkpoint later, so the anchor stays the starting point).
        self.anchor = ({name: p.detach().clone().to(self.accelerator.device)
                        for name, p in student.named_parameters() if p.requires_grad}
                       if config.loss.anchor_weight > 0 else None)
        encoder = {id(p) for p in self._encoder_of(student).parameters()}
        groups = [{"params": [p for p in student.parameters() if p.requires_grad and (id(p) in encoder) == in_encoder],
                   "lr_scale": config.optim.encoder_lr_scale if in_encoder else 1.0} for in_encoder in (False, True)]
        optimizer = torch.optim.AdamW([g for g in groups if g["params"]], lr=config.optim.lr, betas=config.optim.betas,
                                      weight_decay=config.optim.weight_decay)
        # What the config says of each group, applied again over a checkpoint's (whose groups carry
        # the settings they were saved with) when a run resumes with allowed changes.
        self._group_settings = [{key: group[key] for key in ("lr_scale", "betas", "weight_decay")}
                                for group in optimizer.param_groups]
        self.model, self.optimizer = self.accelerator.prepare(student, optimizer)
        self.state = TrainerState()
        # A frozen encoder reading unaugmented audio gives the same states every epoch: compute once.
        # (An online teacher reads the batch's audio, so nothing would be saved.)
        self.encoder_cache = None
        if (config.optim.freeze_encoder and config.optim.cache_frozen_encoder and not config.data.augment
                and config.teacher.mode != "online"):
            self.encoder_cache = EncoderStateCache(config.out / "encoder-cache", self._encoder_of(student),
                                                   self.feature_extractor)
        self.self_teacher: torch.nn.Module | None = None  # ASKD phase 2
        self.log: RunLog | None = None  # opened by run(), once it knows the step it resumes from

    # -- state ------------------------------------------------------------------------------------

    @property
    def student(self) -> torch.nn.Module:
        return self.accelerator.unwrap_model(self.model)

    # -- what a student family's trainer provides (whisper_trainer, ctc_trainer) ------------------

    def _load_student(self) -> torch.nn.Module:
        """The student of ``config.student``, trainable; sets ``self.feature_extractor``."""
        raise NotImplementedError

    def _vocab_size(self, student: torch.nn.Module) -> int | None:
        """The vocabulary a token-level KL compares with the teacher's; None: the family has no such term."""
        raise NotImplementedError

    def _encoder_of(self, student: torch.nn.Module) -> torch.nn.Module:
        """The student's audio encoder (frozen by ``optim.freeze_encoder``, cached when frozen)."""
        raise NotImplementedError

    def _freeze_more(self, student: torch.nn.Module) -> None:
        """Family-specific freezing beyond the encoder."""

    def _loss(self, speech_batch, weights: LossWeights) -> LossParts:
        raise NotImplementedError

    def _recogniser_of(self, model: torch.nn.Module):
        """``model`` (the student or its self-teacher) as something `transcribe_manifest` decodes."""
        raise NotImplementedError

    def _write_model(self, model: torch.nn.Module, folder: Path) -> None:
        """Write ``model`` as the family's loadable folder into the empty ``folder``."""
        raise NotImplementedError

    def resume(self) -> Path | None:
        """Restore the latest complete checkpoint of ``config.out``, if there is one."""
        checkpoints = complete_checkpoints(self.config.out)
        if not checkpoints:
            return None
        loaded = load_checkpoint(checkpoints[-1])
        loaded.load_model_into(self.student)
        self.optimizer.load_state_dict(loaded.optimizer_state)
        for group, settings in zip(self.optimizer.param_groups, self._group_settings):
            group.update(settings)  # torch restores the saved ones; a resume allowed to change them uses the new
        self.state = loaded.state
        if self.state.phase == PHASE_SELF:
            self.self_teacher = self._frozen_copy()
            loaded.load_self_teacher_into(self.self_teacher)
        rng = loaded.rng(self.accelerator.process_index)
        if rng is not None:
            set_rng_state(rng)
        return loaded.folder

    def save(self) -> Path:
        rngs = gather_object([rng_state()]) if self.accelerator.num_processes > 1 else [rng_state()]
        folder = None
        if self.accelerator.is_main_process:
            folder = save_checkpoint(self.config.out, self.state, self.student,
                                     self.optimizer.state_dict(), self.config, rng_states=rngs,
                                     self_teacher=self.self_teacher)
            prune_checkpoints(self.config.out, self.config.checkpoint.keep_last, self.state.best_step)
        self.accelerator.wait_for_everyone()
        return folder or Path(self.config.out) / "checkpoints"

    # -- data ------------------------------------------------------------------------------------

    def _dataset(self, epoch: int, start_batch: int) -> SpeechDataset:
        d = self.config.data
        return SpeechDataset(
            d.train_manifest, self.feature_extractor,
            BatchingConfig(d.batch_size, d.bucket_size, d.shuffle_buffer, self.config.seed),
            augmentation=Augmentation() if d.augment else None, epoch=epoch, start_batch=start_batch,
            rank=self.accelerator.process_index, world_size=self.accelerator.num_processes,
            precomputed=self.encoder_cache.has if self.encoder_cache is not None else None,
        )

    def _batches(self):
        """Micro-batches forever, epoch after epoch, from the saved data position. Each epoch is cut
        to a multiple of (processes × grad_accum) batches so every process takes equal steps."""
        group = self.accelerator.num_processes * self.config.optim.grad_accum
        while True:
            usable = sum(1 for _ in self._dataset(self.state.epoch, 0).batch_plan()) // group * group
            if usable == 0:
                raise VoxdistillError(f"{self.config.data.train_manifest}: fewer batches than "
                                      f"processes × grad_accum ({group}); lower data.batch_size")
            start = self.state.batches_done
            own = self._dataset(self.state.epoch, start)
            for k, batch in zip(range(start, usable, self.accelerator.num_processes), own):
                yield batch
            self.state.epoch += 1
            self.state.batches_done = 0

    # -- one step --------------------------------------------------------------------------------

    # -- ASKD phase 2 ----------------------------------------------------------------------------

    def _frozen_copy(self) -> torch.nn.Module:
        model = copy.deepcopy(self.student)
        model.eval()
        model.requires_grad_(False)
        return model

    def _start_self_distillation(self) -> None:
        """At the phase boundary the student's present self becomes its teacher (a snapshot, or the
        starting point of its EMA), fingerprinted like any teacher."""
        self.self_teacher = self._frozen_copy()
        self.state.phase = PHASE_SELF
        sd = self.config.self_distill
        self.state.extra["self_teacher"] = {
            "kind": sd.teacher, "from_step": self.state.step, "ema_decay": sd.ema_decay if sd.teacher == "ema" else None,
            "fingerprint_at_start": weights_sha256(self.self_teacher)[:16],
        }

    def _cached_encoder_states(self, utterances, features: torch.Tensor | None) -> torch.Tensor:
        """(B, P, d) the frozen student encoder's states of ``utterances``: read back (``features``
        None: every one is stored), or computed from ``features`` now and stored."""
        if features is None:
            return self.encoder_cache.load(utterances).to(self.accelerator.device)
        with torch.no_grad(), self.accelerator.autocast():
            states = self._encoder_of(self.student)(features).last_hidden_state
        self.encoder_cache.store(utterances, states)
        return states

    def _teacher_encoder_states(self, speech_batch, compared: list[int] | None = None) -> torch.Tensor:
        """(B, P, d) the teacher's final encoder states over the student's window: from the cache
        (offline), or from the teacher reading its own 30 s window (online). A cache of each clip's
        positions alone gives rows of the clips' lengths, zero-padded to the longest; ``compared``,
        the positions of each clip the loss compares (all P if None), must all be there."""
        positions = self.teacher.encoder_positions
        if self.teacher.mode == "offline":
            cache = self.teacher.topk_cache
            rows = [cache.encoder_states(u.extra["topk_shard"], u.extra["topk_index"], positions)
                    for u in speech_batch.utterances]
            for utterance, row, n in zip(speech_batch.utterances, rows, compared or [positions] * len(rows)):
                if len(row) < min(n, positions):
                    raise TeacherMismatchError(
                        f"{cache.folder / utterance.extra['topk_shard']}: utterance {utterance.id} has the teacher's "
                        f"encoder states over {len(row)} positions, but the loss compares {min(n, positions)}; "
                        f"were these pseudo-labels made from other audio?")
            return torch.nn.utils.rnn.pad_sequence(rows, batch_first=True)
        teacher = self.teacher.whisper
        features = log_mel(teacher.processor.feature_extractor, speech_batch.audios).to(self.accelerator.device)
        with torch.inference_mode():
            return teacher.model.model.encoder(features).last_hidden_state[:, :positions].clone()

    def _check_finite(self, value: torch.Tensor, what: str, ids: list[str]) -> None:
        finite = torch.tensor(float(torch.isfinite(value).all()), device=self.accelerator.device)
        if self.accelerator.reduce(finite, reduction="sum").item() < self.accelerator.num_processes:
            raise NonFiniteError(
                f"non-finite {what} at step {self.state.step + 1} (batch of {', '.join(ids[:8])}"
                f"{' …' if len(ids) > 8 else ''}); the step was not applied. The last checkpoint in "
                f"{self.config.out / 'checkpoints'} is intact: lower optim.lr or check these utterances, then resume")

    def loss_weights(self) -> LossWeights:
        """This step's weights: the decaying teacher weight in phase 1, the self-teacher's in phase 2."""
        loss = self.config.loss
        if self.state.phase == PHASE_SELF:
            return loss.weights(self.config.self_distill.kd_weight)
        return loss.weights(kd_weight_at(loss.kd_weight, loss.kd_decay, self.state.step))

    def train_step(self, batches) -> dict[str, float]:
        o = self.config.optim
        if phase_at(self.config.self_distill, self.state.step) == PHASE_SELF and self.self_teacher is None:
            self._start_self_distillation()
        weights = self.loss_weights()
        lr = o.lr * lr_factor(self.state.step, o.warmup_steps, o.max_steps, o.schedule, o.min_lr_ratio)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group["lr_scale"]
        totals = ({"total": 0.0, "ce": 0.0, "kd": 0.0} | ({"encoder": 0.0} if self.teacher.encoder_positions else {})
                  | ({"anchor": 0.0} if self.anchor is not None else {}))
        ids: list[str] = []
        for micro in range(o.grad_accum):
            batch = next(batches)
            ids += batch.ids
            last = micro == o.grad_accum - 1
            with nullcontext() if last else self.accelerator.no_sync(self.model):
                parts = self._loss(batch, weights)
                if self.anchor is not None:
                    parts.add_anchor_term(anchor_distance(dict(self.student.named_parameters()), self.anchor),
                                          self.config.loss.anchor_weight)
                self._check_finite(parts.total, "loss", batch.ids)
                self.accelerator.backward(parts.total / o.grad_accum)
            for key, value in parts.as_floats().items():
                totals[key] += value / o.grad_accum
        grad_norm = self.accelerator.clip_grad_norm_(self.model.parameters(), o.clip_grad_norm or float("inf"))
        self._check_finite(grad_norm, "gradient norm", ids)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.self_teacher is not None and self.config.self_distill.teacher == "ema":
            ema_update(dict(self.self_teacher.named_parameters()), self.student, self.config.self_distill.ema_decay)
        self.state.step += 1
        self.state.batches_done += self.accelerator.num_processes * o.grad_accum
        metrics = {key: self._mean_over_processes(v) for key, v in totals.items()}
        teacher = self.config.self_distill.teacher if self.state.phase == PHASE_SELF else self.teacher.mode
        return metrics | {"lr": lr, "grad_norm": float(grad_norm), "kd_weight": weights.kd_weight,
                          "phase": 2 if self.state.phase == PHASE_SELF else 1, "active_teacher": teacher}

    def _mean_over_processes(self, value: float) -> float:
        if self.accelerator.num_processes == 1:
            return value
        t = torch.tensor(value, device=self.accelerator.device)
        return self.accelerator.reduce(t, reduction="mean").item()

    # -- evaluation ------------------------------------------------------------------------------

    def evaluate(self) -> float | None:
        """Dev WER of the current student (main process), remembered as the best when no earlier step
        scored lower. On a tie the later step is kept: the dev set cannot tell the two apart, and the
        later one has gone further toward the training objective (a few dozen dev sentences often
        tie: the demo's steps 25-100 all scored 4.9%, and the later ones were closer to the teacher
        on isolated words, docs/measurements.md)."""
        wer = None
        if self.config.data.dev_manifest is not None and self.accelerator.is_main_process:
            wer = self.dev_wer(self.student)
            self.state.last_wer = wer
            if self.state.best_wer is None or wer <= self.state.best_wer:
                self.state.best_wer, self.state.best_step = wer, self.state.step
        self.accelerator.wait_for_everyone()
        return wer

    def dev_wer(self, model: torch.nn.Module) -> float:
        """WER of ``model`` on the dev manifest, decoded as ``eval`` says, English-normalised. The checks
        on each window apply as in ``evaluate``, but for the temperature fallback: a student early in
        training doubts most clips, and resampling them all would multiply the cost of each dev pass."""
        e = self.config.eval
        training = model.training
        model.eval()
        refs, hyps = [], []
        # Parametrized weights (LoRA adapters, int8 rounding) computed once for the pass, not per token.
        with parametrize.cached():
            for utt, text in transcribe_manifest(self._recogniser_of(model), self.config.data.dev_manifest,
                                                 DecodingOptions(num_beams=e.num_beams, batch_size=e.batch_size,
                                                                 checks=SpeechChecks(temperatures=()))):
                refs.append(utt.text or "")
                hyps.append(text)
                if e.max_utterances and len(refs) >= e.max_utterances:
                    break
        model.train(training)
        return word_error_rate(refs, hyps)

    # -- the loop --------------------------------------------------------------------------------

    def _config_history(self, resumed: bool) -> list[dict]:
        """Every allowed change of settings of this run folder: those recorded before (a run that
        starts from scratch has none) and this resume's, at the step it continues from."""
        previous = self.config.out / "run.json"
        history = json.loads(previous.read_text()).get("config_changes", []) if resumed and previous.is_file() else []
        return history + [{"step": self.state.step, "key": change.key, "old": change.old, "new": change.new}
                          for change in self.config_changes]

    def run(self, progress: bool = True, steps_this_run: int | None = None) -> TrainResult:
        """Train to ``optim.max_steps``, or for at most ``steps_this_run`` steps (then checkpoint and
        return; the same command continues later, e.g. on a preemptible machine)."""
        c = self.config
        resumed = self.resume()
        stop_at = c.optim.max_steps if steps_this_run is None else min(c.optim.max_steps, self.state.step + steps_this_run)
        if self.accelerator.is_main_process:
            c.out.mkdir(parents=True, exist_ok=True)
            save_config(c, c.out / "config.yaml")
            write_text_atomic(c.out / "run.json", json.dumps({
                "teacher_mode": self.teacher.mode, "teacher_fingerprint": self.teacher.fingerprint,
                "allowed_teacher_mismatches": self.teacher.mismatches,
                "processes": self.accelerator.num_processes, "resumed_from": str(resumed) if resumed else None,
                "labels": c.data.labels, "utterances_by_label": dict(self.label_sources),
                "config_changes": self._config_history(resumed is not None),
            }, indent=2))
        self.log = RunLog(c.out, self.state.step if resumed else None, enabled=self.accelerator.is_main_process)
        if progress and self.accelerator.is_main_process:
            by_label = ", ".join(f"{n} on {'references' if k == 'reference' else 'pseudo-labels'}"
                                 for k, n in sorted(self.label_sources.items()))
            tqdm.write(f"labels (data.labels={c.data.labels}): {by_label}; teacher: {self.teacher.mode}")
        if self.state.step == 0 and c.data.dev_manifest is not None and c.eval.every_steps:
            # The starting point of the dev-WER curve: the freshly built student.
            # It competes for export like any step: when training only loses dev WER, the starting
            # student (reloaded from its folder, as step 0 has no checkpoint) is what comes out.
            wer = self.evaluate()
            if wer is not None:
                self.log.write(0, {"dev_wer": wer})
        self.model.train()
        batches = self._batches()
        losses: list[float] = []
        bar = tqdm(total=c.optim.max_steps, initial=self.state.step, desc="distill", unit="step",
                   disable=not (progress and self.accelerator.is_main_process))
        last = None
        with _StopFlag() as stop:
            while self.state.step < stop_at:
                started = time.perf_counter()
                metrics = self.train_step(batches)
                losses.append(metrics["total"])
                metrics["seconds"] = time.perf_counter() - started
                bar.update()
                if self.state.step % c.log_every == 0:
                    bar.set_postfix(loss=f"{metrics['total']:.3f}", ce=f"{metrics['ce']:.3f}", kd=f"{metrics['kd']:.3f}")
                done = self.state.step == c.optim.max_steps
                eval_step = c.eval.every_steps and self.state.step % c.eval.every_steps == 0 or done
                if eval_step:
                    wer = self.evaluate()
                    if wer is not None:
                        metrics["dev_wer"] = wer
                self.log.write(self.state.step, metrics | {"epoch": self.state.epoch})
                pause = self.state.step == stop_at
                # Every step scored on the dev set is checkpointed, so the best by dev WER is on disk to export.
                scored = eval_step and c.data.dev_manifest is not None
                if self.state.step % c.checkpoint.every_steps == 0 or scored or pause or stop.signum is not None:
                    last = self.save()
                if stop.signum is not None and not done:
                    bar.close()
                    self.log.close()
                    raise TrainingInterrupted(stop.signum, self.state.step, last)
        bar.close()
        self.log.close()
        if self.state.step == c.optim.max_steps:
            self.export_final()
        return TrainResult(self.state, c.out, last or complete_checkpoints(c.out)[-1], losses)

    def export_final(self) -> Path:
        """The trained student as a Hugging Face folder, ``out/model`` (what ``transformers.pipeline``,
        ``evaluate`` and ``export`` take), with its provenance (``student.json``) carried over and
        saying which weights were exported (see ``exported_weights``)."""
        final = self.config.out / "model"
        if self.accelerator.is_main_process:
            with folder_written_atomically(final, existing="replace") as tmp:
                model, exported = self.exported_weights()
                if self.config.optim.lora_rank:  # a plain model of the student's shape, adapters folded in
                    model = merge_lora(copy.deepcopy(model))
                self._write_model(model, tmp)
                if (record := read_student_record(self.config.student)) is not None:
                    record["distilled"] = {"run": str(self.config.out), "steps": self.state.step,
                                           "teacher_mode": self.teacher.mode,
                                           "teacher_fingerprint": self.teacher.fingerprint, **exported}
                    (tmp / STUDENT_FILE).write_text(json.dumps(record, indent=2))
        self.accelerator.wait_for_everyone()
        return final

    def exported_weights(self) -> tuple[torch.nn.Module, dict]:
        """The weights to export and the record of the choice: the step with the lowest dev WER (a
        checkpoint, or the student folder for step 0), or the EMA self-teacher when it scores lower
        still; the last step without a dev set."""
        s = self.state
        if self.config.data.dev_manifest is None:
            return self.student, {"exported": "last", "exported_step": s.step, "exported_dev_wer": None,
                                  "last_step_dev_wer": None, "exported_because": "no dev manifest to score steps by"}
        model = self.student
        if s.best_step == 0:
            model = self._load_student().eval()
        elif s.best_step != s.step:
            model = self._frozen_copy()
            load_weights(checkpoint_dir(self.config.out, s.best_step), model)
        because = ("the lowest dev WER of the scored steps (the latest of equals)" if s.best_step else
                   "no trained step scored below the starting student (step 0), which is exported as it was")
        record = {"exported": "best", "exported_step": s.best_step, "exported_dev_wer": s.best_wer,
                  "last_step_dev_wer": s.last_wer, "exported_because": because}
        if self.self_teacher is not None and self.config.self_distill.teacher == "ema":
            record["ema_dev_wer"] = ema_wer = self.dev_wer(self.self_teacher)
            if ema_wer < s.best_wer:
                model = self.self_teacher
                record |= {"exported": "ema", "exported_step": s.step, "exported_dev_wer": ema_wer,
                           "exported_because": "the EMA self-teacher scored below every checkpoint"}
        return model, record
