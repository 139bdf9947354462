"""Training Whisper students in the distillation loop of `distill.trainer`: token CE on the labels,
KL to the teacher's token distributions (online, or its cached top-k), encoder-state KD, and the
self-teacher's token KL in ASKD phase 2."""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from transformers import WhisperForConditionalGeneration

from voxdistill.data.dataset import encoder_positions_of, log_mel
from voxdistill.decoding import prompt_tokens
from voxdistill.distill.batches import build_decoder_batch
from voxdistill.distill.curriculum import PHASE_SELF
from voxdistill.distill.losses import LossParts, LossWeights, distillation_loss, encoder_state_loss, paired_states
from voxdistill.distill.trainer import Trainer
from voxdistill.models.loading import Whisper, load_whisper
from voxdistill.models.quantize import add_fake_int8, remove_fake_int8
from voxdistill.models.vocabulary import first_pieces, spelled_distribution


class WhisperTrainer(Trainer):
    def _load_student(self) -> torch.nn.Module:
        # Through load_whisper, so a damaged or pickle-only student folder gets the same errors as anywhere.
        loaded = load_whisper(str(self.config.student), frozen=False)
        self.processor, student = loaded.processor, loaded.model
        if self.config.optim.quantization_aware:
            add_fake_int8(student)  # before anything copies or hashes the student
        self.feature_extractor = self.processor.feature_extractor
        self.prompt = prompt_tokens(loaded)
        self.eot = student.generation_config.eos_token_id
        self.max_length = student.config.max_target_positions
        # A trimmed student's (teacher id of each student token, student token each teacher token's spelling
        # starts with), made once from the teacher's vocabulary map (`_trimmed_maps`).
        self._trimmed = None
        return student

    def _vocab_size(self, student: WhisperForConditionalGeneration) -> int:
        return student.config.vocab_size

    def _encoder_of(self, student: WhisperForConditionalGeneration) -> torch.nn.Module:
        return student.model.encoder

    def _freeze_more(self, student: WhisperForConditionalGeneration) -> None:
        if self.config.optim.freeze_decoder:
            student.model.decoder.requires_grad_(False)
            student.proj_out.requires_grad_(False)  # tied to the decoder's token embeddings
        if self.config.optim.freeze_embeddings:
            student.model.decoder.embed_tokens.requires_grad_(False)  # proj_out is tied to it
            student.model.decoder.embed_positions.requires_grad_(False)

    def _recogniser_of(self, model: WhisperForConditionalGeneration) -> Whisper:
        return Whisper(model, self.processor, "student", None)

    def _write_model(self, model: WhisperForConditionalGeneration, folder: Path) -> None:
        if self.config.optim.quantization_aware:
            model = remove_fake_int8(copy.deepcopy(model))  # the float weights int8 conversion rounds
        model.save_pretrained(folder)
        self.processor.save_pretrained(folder)
        self.processor.feature_extractor.save_pretrained(folder)  # preprocessor_config.json, as save_student

    def _loss(self, speech_batch, weights: LossWeights) -> LossParts:
        utts = speech_batch.utterances
        batch = build_decoder_batch(utts, self.processor.tokenizer, self.prompt, self.eot, self.max_length,
                                    self.config.data.labels, self.teacher.topk_cache, own_tokens=self.teacher.own_label_tokens)
        device = self.accelerator.device
        decoder_input_ids = batch.decoder_input_ids.to(device)
        groups = self._student_inputs(speech_batch)
        teacher_logits = teacher_states = None
        if self.state.phase == PHASE_SELF and weights.kd_weight > 0:
            # The self-teacher reads what the student reads (its encoder is the student's, or a
            # past of it when the encoder trains).
            with torch.inference_mode():
                teacher_logits = _grouped(self.self_teacher, groups, decoder_input_ids)[0].clone()
        elif self.teacher.mode == "online" and weights.kd_weight > 0:
            teacher_features = groups[0][1]["input_features"] if not self.teacher_windowed else log_mel(
                self.teacher.whisper.processor.feature_extractor, speech_batch.audios).to(device)
            # A trimmed student's tokens are all teacher tokens: the teacher reads the same text, and its
            # distribution is moved onto the student's vocabulary, each dropped token's probability onto
            # the piece the student spells it with first (`models.vocabulary.spelled_distribution`).
            trimmed = self.teacher.vocabulary
            with torch.inference_mode():
                if trimmed is None:
                    out = self.teacher.whisper.model(input_features=teacher_features, decoder_input_ids=decoder_input_ids)
                    logits = out.logits
                else:
                    teacher_ids, first_piece = self._trimmed_maps(device)
                    out = self.teacher.whisper.model(input_features=teacher_features,
                                                     decoder_input_ids=teacher_ids[decoder_input_ids])
                    logits = spelled_distribution(out.logits, first_piece, trimmed.size)
            # Clones leave inference mode: autograd may touch them.
            teacher_logits = logits.clone()
            teacher_states = out.encoder_last_hidden_state.clone()
        with self.accelerator.autocast():
            logits, student_states = _grouped(self.model, groups, decoder_input_ids)
        topk = None
        if batch.topk_ids is not None and self.teacher.mode == "offline" and self.state.phase != PHASE_SELF:
            topk = (batch.topk_ids.to(device), batch.topk_log_probs.to(device))
        parts = distillation_loss(logits, batch.labels.to(device), weights,
                                  teacher_logits=teacher_logits, teacher_topk=topk)
        positions = self.teacher.encoder_positions
        if positions:
            # Position by position: a clip-length student's states over its clip and trailing padding
            # (or its clip alone) against the teacher's first positions of its 30 s window, which hold
            # the same audio.
            clips = ([encoder_positions_of(self.feature_extractor, len(audio)) for audio in speech_batch.audios]
                     if self.config.loss.encoder_kd_span == "clip" else None)
            if teacher_states is None:
                teacher_states = self._teacher_encoder_states(speech_batch, clips)
            teacher_states = teacher_states.to(device)
            student_rows, teacher_rows = paired_states(student_states, teacher_states, positions, clips)
            parts.add_encoder_term(encoder_state_loss(student_rows, teacher_rows),
                                   self.config.loss.encoder_kd_weight)
        return parts

    def _trimmed_maps(self, device) -> tuple[torch.Tensor, torch.Tensor]:
        if self._trimmed is None:
            vocabulary = self.teacher.vocabulary
            self._trimmed = (vocabulary.source_ids().to(device),
                             first_pieces(self.teacher.whisper.processor.tokenizer, self.processor.tokenizer,
                                          vocabulary).to(device))
        return self._trimmed

    def _student_inputs(self, speech_batch) -> list[tuple[list[int], dict]]:
        """(rows of the batch, the student's encoder inputs for them) for each group of clips the
        student pads alike (`SpeechBatch.feature_groups`: the whole batch for a fixed window), so
        every clip is encoded exactly as it will be when transcribed alone. With a frozen-encoder
        cache the inputs are the stored states; a batch read wholly from the cache is grouped by
        their lengths."""
        device, utts = self.accelerator.device, speech_batch.utterances

        def inputs(rows: list[int], features: torch.Tensor) -> dict:
            if self.encoder_cache is None:
                return {"input_features": features.to(device)}
            return {"encoder_outputs": (self._cached_encoder_states([utts[i] for i in rows], features.to(device)),)}

        if speech_batch.feature_groups:
            return [(rows, inputs(rows, features)) for rows, features in speech_batch.feature_groups]
        states = [self.encoder_cache.load([u])[0] for u in utts]
        by_length: dict[int, list[int]] = {}
        for i, row in enumerate(states):
            by_length.setdefault(row.shape[0], []).append(i)
        return [(rows, {"encoder_outputs": (torch.stack([states[i] for i in rows]).to(device),)})
                for rows in by_length.values()]


def _grouped(model: torch.nn.Module, groups: list[tuple[list[int], dict]],
             decoder_input_ids: torch.Tensor) -> tuple[torch.Tensor, list[tuple[list[int], torch.Tensor]]]:
    """``model``'s output over a batch given as groups of rows (`WhisperTrainer._student_inputs`):
    its logits in the batch's row order, and (rows, last encoder states) for each group, each group's
    states as long as its clips were padded."""
    outputs = [(rows, model(**inputs, decoder_input_ids=decoder_input_ids[rows])) for rows, inputs in groups]
    states = [(rows, out.encoder_last_hidden_state) for rows, out in outputs]
    if len(outputs) == 1:
        return outputs[0][1].logits, states
    logits = torch.cat([out.logits for _, out in outputs])
    order = torch.tensor([i for rows, _ in outputs for i in rows], device=logits.device)
    return logits[torch.argsort(order)], states
