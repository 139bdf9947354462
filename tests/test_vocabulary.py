"""Trimming a student's vocabulary (`voxdistill prune --vocabulary`): the trimmed tokenizer is BPE
with fewer merges, the kept tokens score exactly as before, the special tokens move with every id
that points at them, the result transcribes in PyTorch, CTranslate2 and faster-whisper, and training
spells its labels in its own tokens and reads the untrimmed teacher along them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.test_distill import setup  # noqa: F401 (fixture: pseudo-labels with a top-k cache)
from tests.test_prune import GREEDY, clips, forward_logits, student  # noqa: F401 (fixtures)
from tests.test_pseudo_label import speech_manifest
from voxdistill.config import from_dict
from voxdistill.data.manifest import Utterance
from voxdistill.decoding import text_tokens
from voxdistill.distill.batches import LabelError, build_decoder_batch
from voxdistill.distill.config import DistillConfig
from voxdistill.distill.consistency import TeacherMismatchError
from voxdistill.distill.prune import PruneError, trim_student
from voxdistill.families import distill, load_recogniser
from voxdistill.files import OutputError
from voxdistill.models.convert import special_tokens_from_tokenizer_json
from voxdistill.models.loading import load_whisper
from voxdistill.models.student import STUDENT_FILE
from voxdistill.models.vocabulary import (
    VocabularyError, VocabularyMap, first_pieces, recorded_vocabulary, spelled_distribution, trim_vocabulary,
    trimmed_tokenizer_json,
)
from voxdistill.runtime import Runtime, generate_tokens

KEEP = 8000
COMMON = "there is a pot of gold at the end of the road"  # every token below 8000 in Whisper's English BPE
RARE = "a beauteous rainbow"  # " rainbow" is token 27223: past 8000


@pytest.fixture(scope="module")
def trimmed(student, tmp_path_factory) -> Path:
    return trim_student(str(student), KEEP, tmp_path_factory.mktemp("trimmed") / "model")[0]


def test_kept_tokens_score_as_before_and_specials_follow(student, trimmed, clips):
    source, small = load_whisper(str(student)), load_whisper(str(trimmed))
    vocab_map = recorded_vocabulary(trimmed)
    assert vocab_map == VocabularyMap(KEEP, 50256, 51864) and vocab_map.size == KEEP + 1608
    assert small.model.config.vocab_size == len(small.processor.tokenizer) == vocab_map.size
    # A text of common tokens is the same ids in both, and the trimmed model's scores over its
    # vocabulary are the source's, gathered: nothing but the dropped rows changed.
    assert text_tokens(small.processor.tokenizer, COMMON) == text_tokens(source.processor.tokenizer, COMMON)
    assert max(text_tokens(source.processor.tokenizer, COMMON)) < KEEP
    expected = forward_logits(student, clips[0], COMMON)[..., vocab_map.source_ids()]
    assert torch.equal(forward_logits(trimmed, clips[0], COMMON), expected)
    # Every special token keeps its place relative to the others, moved down by the same amount.
    tokens = ["<|endoftext|>", "<|startoftranscript|>", "<|notimestamps|>", "<|0.00|>", "<|30.00|>"]
    old = source.processor.tokenizer.convert_tokens_to_ids(tokens)
    assert small.processor.tokenizer.convert_tokens_to_ids(tokens) == [t - vocab_map.shift for t in old]
    generation, before = small.model.generation_config, source.model.generation_config
    for key in ("eos_token_id", "decoder_start_token_id", "no_timestamps_token_id", "prev_sot_token_id"):
        assert getattr(generation, key) == vocab_map.from_source(getattr(before, key))
    assert generation.suppress_tokens == [vocab_map.from_source(t) for t in before.suppress_tokens
                                          if vocab_map.from_source(t) is not None]
    assert len(generation.suppress_tokens) < len(before.suppress_tokens)  # some suppressed tokens were rare


def test_a_rare_word_is_spelled_in_kept_tokens(student, trimmed):
    source, small = load_whisper(str(student)), load_whisper(str(trimmed))
    full = text_tokens(source.processor.tokenizer, RARE)
    short = text_tokens(small.processor.tokenizer, RARE)
    assert max(full) >= KEEP > max(short) and len(short) > len(full)
    assert small.processor.tokenizer.decode(short) == source.processor.tokenizer.decode(full) == " " + RARE


def test_the_record_says_how_and_a_trimmed_student_is_not_trimmed_again(student, trimmed, tmp_path):
    record = json.loads((trimmed / STUDENT_FILE).read_text())
    source = json.loads((student / STUDENT_FILE).read_text())
    assert {key: record[key] for key in source} == source
    assert record["vocabulary"]["source"] == str(student)
    assert record["vocabulary"]["parameters"]["after"] == (record["vocabulary"]["parameters"]["before"]
                                                           - (51864 - KEEP - 1608) * 64)
    with pytest.raises(PruneError, match="trimmed already"):
        trim_student(str(trimmed), 4000, tmp_path / "again")
    with pytest.raises(OutputError):
        trim_student(str(student), KEEP, trimmed)  # never overwritten


def test_impossible_trims_are_refused(student):
    whisper = load_whisper(str(student))
    tokenizer_json = json.loads(whisper.processor.tokenizer.backend_tokenizer.to_str())
    for keep in (256, 50256, 60000):
        with pytest.raises(VocabularyError, match="choose from 257"):
            trimmed_tokenizer_json(tokenizer_json, keep, 51864)
    # Ids that do not follow the merges: swap a late token's id with an early one's.
    vocab = tokenizer_json["model"]["vocab"]
    early, late = next(t for t, i in vocab.items() if i == 300), next(t for t, i in vocab.items() if i == 40000)
    vocab[early], vocab[late] = 40000, 300
    with pytest.raises(VocabularyError, match="do not follow its merges"):
        trimmed_tokenizer_json(tokenizer_json, KEEP, 51864)
    whisper.model.generation_config.is_multilingual = True
    with pytest.raises(VocabularyError, match="multilingual"):
        trim_vocabulary(whisper.model, whisper.processor.tokenizer, KEEP)
    tokenizer_json["model"]["type"] = "WordPiece"
    with pytest.raises(VocabularyError, match="not byte-pair"):
        trimmed_tokenizer_json(tokenizer_json, KEEP, 51864)


def test_a_trimmed_student_transcribes_in_torch_ct2_and_faster_whisper(trimmed, clips, tmp_path):
    from faster_whisper import WhisperModel

    from voxdistill.export.exporter import export_model

    torch_tokens = generate_tokens(load_recogniser(str(trimmed)), clips, GREEDY)
    assert all(tokens and max(tokens) < KEEP for tokens in torch_tokens)  # text tokens only, all kept ones
    out = export_model(str(trimmed), "ct2", tmp_path / "ct2", "float32")
    assert json.loads((out / "config.json").read_text())["suppress_ids_begin"][-1] == KEEP  # end-of-text, moved
    ct2 = load_recogniser(str(out), Runtime("ct2", "float32"), threads=1)
    assert ct2.vocab_size == KEEP + 1608
    assert generate_tokens(ct2, clips, GREEDY) == torch_tokens
    # faster-whisper finds the special tokens by name in the exported tokenizer (its 10 s window is
    # voxdistill's runtime's to pad: faster-whisper pads to 30 s, so this student is fed 10 s features).
    # Read back into PyTorch, it is English-only as CTranslate2 reads it (fewer than 51,865 tokens).
    tokenizer_json = json.loads((out / "tokenizer.json").read_text())
    vocabulary = json.loads((out / "vocabulary.json").read_text())
    assert special_tokens_from_tokenizer_json(tokenizer_json, len(vocabulary)).languages == {}
    model = WhisperModel(str(out), device="cpu", compute_type="float32", cpu_threads=1)
    assert model.hf_tokenizer.token_to_id("<|endoftext|>") == KEEP
    assert model.hf_tokenizer.token_to_id("<|notimestamps|>") == KEEP + 106


def test_labels_are_spelled_in_the_students_own_tokens(student, trimmed):
    small = load_whisper(str(trimmed))
    teacher_ids = text_tokens(load_whisper(str(student)).processor.tokenizer, RARE)
    utt = Utterance(id="u1", audio_filepath="u1.wav", duration=1.0, text=RARE, extra={"pseudo_label_tokens": teacher_ids})
    tokenizer, prompt, eot = small.processor.tokenizer, [KEEP + 1, KEEP + 106], KEEP
    batch = build_decoder_batch([utt], tokenizer, prompt, eot, 64, "pseudo_label", own_tokens=True)
    labels = [t for t in batch.labels[0].tolist() if t >= 0]
    assert labels == text_tokens(tokenizer, RARE) + [eot]
    # Without own_tokens the teacher's cached ids would be read as this student's: refused, named.
    with pytest.raises(LabelError, match="u1: its cached pseudo label tokens reach id 27223"):
        build_decoder_batch([utt], tokenizer, prompt, eot, 64, "pseudo_label")


def test_a_dropped_tokens_probability_goes_to_the_piece_it_is_spelled_with_first(student, trimmed):
    source, small = load_whisper(str(student)).processor.tokenizer, load_whisper(str(trimmed)).processor.tokenizer
    vocab_map = recorded_vocabulary(trimmed)
    first = first_pieces(source, small, vocab_map)
    rainbow, rain = source.convert_tokens_to_ids("\u0120rainbow"), small.convert_tokens_to_ids("\u0120rain")
    assert rainbow >= KEEP and first[rainbow] == rain
    kept = torch.arange(KEEP)
    assert torch.equal(first[kept], kept) and first[50256] == KEEP and first[-1] == vocab_map.size - 1
    logits = torch.randn(2, 3, vocab_map.source_size)
    spelled = spelled_distribution(logits, first, vocab_map.size).exp()
    probs = logits.softmax(-1)
    assert torch.allclose(spelled.sum(-1), torch.ones(2, 3))
    dropped = torch.tensor([t for t in range(KEEP, 50256) if first[t] == rain])
    assert torch.allclose(spelled[..., rain], probs[..., rain] + probs[..., dropped].sum(-1))
    # Where the teacher puts nothing on dropped tokens, the distribution is its own over the kept ones.
    logits[..., KEEP:50256] = -1e9
    assert torch.allclose(spelled_distribution(logits, first, vocab_map.size).exp(),
                          logits.softmax(-1)[..., vocab_map.source_ids()], atol=1e-6)


def test_online_kd_reads_the_teacher_over_the_students_vocabulary(tiny_random_whisper, speech_dir, setup, tmp_path):
    """The teacher's own weights, trimmed, distilled from the untrimmed teacher online along the
    student's own tokens. Trimmed by one token only, the teacher read along the student's tokens
    (prompt and end-of-text moved back to its ids) is the student but for that token's probability:
    the first KL is all but zero, where a teacher fed the student's ids as its own reads other tokens."""
    manifest = speech_manifest(speech_dir, tmp_path / "speech.jsonl")
    near = trim_student(str(tiny_random_whisper), 50255, tmp_path / "near")[0]
    data = {"student": str(near), "out": str(tmp_path / "near-run"), "seed": 7,
            "data": {"train_manifest": str(manifest), "labels": "reference", "batch_size": 2},
            "teacher": {"mode": "online", "model": str(tiny_random_whisper)},
            "loss": {"ce_weight": 0.0, "kd_weight": 1.0, "temperature": 1.0},
            "optim": {"max_steps": 1, "warmup_steps": 1, "lr": 1e-3}, "eval": {"every_steps": 0}}
    # 5e-5 here; reading the student's ids as the teacher's (specials one off) gives 0.07.
    assert distill(from_dict(DistillConfig, data), progress=False).losses[0] < 1e-3
    own = trim_student(str(tiny_random_whisper), KEEP, tmp_path / "student")[0]
    data = {"student": str(own), "out": str(tmp_path / "run"), "seed": 7,
            "data": {"train_manifest": str(manifest), "labels": "reference", "batch_size": 2},
            "teacher": {"mode": "online", "model": str(tiny_random_whisper)},
            "loss": {"ce_weight": 0.0, "kd_weight": 1.0, "temperature": 2.0},
            "optim": {"max_steps": 2, "warmup_steps": 1, "lr": 1e-3}, "eval": {"every_steps": 0}}
    result = distill(from_dict(DistillConfig, data), progress=False)
    assert len(result.losses) == 2 and all(0 <= loss < float("inf") for loss in result.losses)
    assert load_whisper(str(tmp_path / "run" / "model")).model.config.vocab_size == KEEP + 1608
    # The teacher's cached rows follow its own tokens: offline KD of a trimmed student is refused.
    data |= {"out": str(tmp_path / "offline"), "teacher": {"mode": "offline"},
             "data": {"train_manifest": str(setup / "pl" / "pseudo_labels.jsonl"), "batch_size": 2}}
    with pytest.raises(TeacherMismatchError, match="trimmed to 9608 tokens.*teacher.mode=online"):
        distill(from_dict(DistillConfig, data), progress=False)
    assert not (tmp_path / "offline" / "model").exists()


def test_prune_command_trims_and_refuses_two_changes_at_once(student, tmp_path):
    env = os.environ.copy()
    result = subprocess.run([sys.executable, "-m", "voxdistill.cli", "prune", str(student), "--vocabulary", "5000",
                             "--out", str(tmp_path / "t")], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert "vocabulary 51864 -> 6608 tokens" in result.stdout and "vocabulary-recover.yaml" in result.stdout
    assert recorded_vocabulary(tmp_path / "t") == VocabularyMap(5000, 50256, 51864)
    both = subprocess.run([sys.executable, "-m", "voxdistill.cli", "prune", str(student), "--vocabulary", "5000",
                           "--ffn-keep", "0.5", "--out", str(tmp_path / "u")], capture_output=True, text=True, env=env)
    assert both.returncode != 0 and "one thing per call" in both.stderr and not (tmp_path / "u").exists()
