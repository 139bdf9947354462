"""Training CTC students (`models.ctc`) in the distillation loop of `distill.trainer`.

A Whisper teacher's token distributions have no frame-level counterpart in a CTC student, so the
teacher reaches it in the two ways that do transfer:
- sequence-level KD: the CTC loss on the teacher's transcripts (``data.labels`` picks references or
  pseudo-labels per utterance exactly as for Whisper students), weighted by ``loss.ce_weight``;
- feature-level KD: ``loss.encoder_kd_weight`` on the distance between the student's final encoder
  states and the teacher's over the student's window (online, or from a pseudo-label cache made
  with ``--encoder-state-seconds``), as for Whisper students.
The token-level KL term (``loss.kd_weight`` in ASKD phase 1) therefore must be 0. In ASKD phase 2
(``self_distill``) the KL term returns as a frame-level one: ``T² · KL`` between the self-teacher's
(EMA or snapshot of the student) per-frame label posteriors and the student's, over the frames that
hold audio, weighted by ``self_distill.kd_weight``. Checkpoints, exact resume, logging, the best-by-
dev-WER export and ``accelerate`` are the loop's own and work unchanged.
"""

from __future__ import annotations

from pathlib import Path

import torch

from voxdistill.audio import SAMPLE_RATE
from voxdistill.distill.batches import label_source, label_text
from voxdistill.distill.curriculum import PHASE_SELF
from voxdistill.distill.losses import LossParts, LossWeights, encoder_state_loss, kl_full
from voxdistill.distill.trainer import Trainer
from voxdistill.errors import VoxdistillError
from voxdistill.models.ctc import CTCStudent, ctc_loss, load_ctc_student, write_ctc_folder
from voxdistill.runtime.ctc_backend import TorchCTCRecogniser


class CTCConfigError(VoxdistillError):
    """A distillation setting that a CTC student cannot honour."""


class CTCTrainer(Trainer):
    def _load_student(self) -> CTCStudent:
        c = self.config
        if c.loss.kd_weight > 0 and c.teacher.mode != "none":
            raise CTCConfigError(
                f"{c.student} is a CTC student: a Whisper teacher's token distributions do not map onto CTC frames, "
                f"so loss.kd_weight must be 0 (the teacher teaches through its pseudo-labels and, with "
                f"loss.encoder_kd_weight, its encoder states; self_distill.kd_weight weighs the frame-level "
                f"KL to the self-teacher)")
        if c.optim.freeze_embeddings:
            raise CTCConfigError(f"{c.student} is a CTC student: it has no token embeddings; set "
                                 f"optim.freeze_embeddings=false")
        if c.optim.freeze_decoder:
            raise CTCConfigError(f"{c.student} is a CTC student: it has no decoder; set optim.freeze_decoder=false "
                                 f"(optim.freeze_encoder trains its head alone)")
        if c.loss.encoder_kd_span != "window":
            raise CTCConfigError(f"{c.student} is a CTC student: loss.encoder_kd_span=clip is for Whisper students "
                                 f"reading each clip at its own length; a CTC student's states are compared over its "
                                 f"window, so it must be window")
        if c.optim.quantization_aware:
            raise CTCConfigError(f"{c.student} is a CTC student: optim.quantization_aware is for Whisper students "
                                 f"deployed in CTranslate2 int8; a CTC student runs in float32")
        if c.optim.lora_rank:
            raise CTCConfigError(f"{c.student} is a CTC student: its head (an LSTM or a small layer drawn at random "
                                 f"when it was built) must train whole, which adapters on its linear layers alone "
                                 f"would not do; set optim.lora_rank=0")
        if c.eval.num_beams != 1:
            raise CTCConfigError(f"{c.student} is a CTC student: it decodes greedily; set eval.num_beams=1")
        student, self.feature_extractor, self.ctc_config = load_ctc_student(c.student)
        self.alphabet = student.alphabet
        return student

    def _vocab_size(self, student: CTCStudent) -> None:
        return None  # no token-level KL with the teacher

    def _encoder_of(self, student: CTCStudent) -> torch.nn.Module:
        return student.encoder

    def _loss(self, speech_batch, weights: LossWeights) -> LossParts:
        utts = speech_batch.utterances
        device = self.accelerator.device
        targets = [self.alphabet.encode(label_text(u, label_source(u, self.config.data.labels))) for u in utts]
        # Frames that hold audio, from the manifest's durations (the same whether or not the batch's
        # encoder states come from the cache, which carries no audio); the dataset checked each
        # against its audio when it read it (`data.manifest.check_duration`).
        lengths = self.student.output_lengths([round(u.duration * SAMPLE_RATE) for u in utts])
        features = None if speech_batch.input_features is None else speech_batch.input_features.to(device)
        # Through self.model (not a submodule), so gradients are synchronised across processes.
        inputs = {"input_features": features} if self.encoder_cache is None else {
            "encoder_states": self._cached_encoder_states(speech_batch.utterances, features)}
        with self.accelerator.autocast():
            out = self.model(**inputs)
        logits, states = out.logits, out.encoder_states
        ce = ctc_loss(logits, lengths, targets)
        total = weights.ce_weight * ce
        kd = torch.zeros((), device=device)
        if self.state.phase == PHASE_SELF and weights.kd_weight > 0:
            with torch.inference_mode():
                teacher_logits = self.self_teacher(**inputs).logits.clone()
            mask = torch.arange(logits.shape[1])[None, :] < lengths[:, None]  # (B, T)
            kd = kl_full(logits, teacher_logits, mask.to(device), weights.temperature)
            total = total + weights.kd_weight * kd
        parts = LossParts(total=total, ce=ce, kd=kd)
        positions = self.teacher.encoder_positions
        if positions:
            teacher_states = self._teacher_encoder_states(speech_batch)
            parts.add_encoder_term(encoder_state_loss(states[:, :positions], teacher_states[:, :positions].to(device)),
                                   self.config.loss.encoder_kd_weight)
        return parts

    def _recogniser_of(self, model: CTCStudent) -> TorchCTCRecogniser:
        return TorchCTCRecogniser(model, self.feature_extractor, source=str(self.config.student))

    def _write_model(self, model: CTCStudent, folder: Path) -> None:
        write_ctc_folder(model, self.feature_extractor, folder)
