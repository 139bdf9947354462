"""Labelled distillation: the teacher's cached rows along references, encoder-state KD, a manifest
mixing labelled and unlabelled audio, and the refusal of settings that could not take effect."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import SPEECH
from tests.test_distill import config_dict, write_config
from tests.test_pseudo_label import assert_rows_are_a_fresh_teacher_forced_pass, records, speech_manifest
from tests.test_pseudo_label_filters import ALL_OFF
from voxdistill.audio import load_audio
from voxdistill.cli import main
from voxdistill.config import ConfigError, from_dict
from voxdistill.data.manifest import read_manifest, write_manifest
from voxdistill.decoding import DecodingOptions, log_mel, prompt_tokens, text_tokens
from voxdistill.distill.batches import build_decoder_batch, count_label_sources
from voxdistill.distill.config import DistillConfig
from voxdistill.families import distill
from voxdistill.models.loading import load_whisper
from voxdistill.models.student import StudentSpec, build_student, save_student
from voxdistill.teacher.pseudo_label import PseudoLabelConfig, run_pseudo_label
from voxdistill.teacher.topk import TopKCache

UNLABELLED = {"fox-1", "weather-2"}  # utterances whose reference is taken away: audio only


@pytest.fixture(scope="module")
def labelled(tiny_random_whisper, speech_dir, tmp_path_factory):
    """12 utterances, 10 with references and 2 without, pseudo-labelled by the tiny random teacher
    with top-8 rows and 10 s of encoder states (its labels of the 2 are noise that the reference-free
    filters would drop: they are off here); a 2+1-layer student with a 10 s window."""
    root = tmp_path_factory.mktemp("labelled")
    full = speech_manifest(speech_dir, root / "full.jsonl", copies=4)
    utts = [replace(u, text=None) if u.id in UNLABELLED else u for u in read_manifest(full)]
    write_manifest(root / "mixed.jsonl", utts)
    run_pseudo_label(PseudoLabelConfig(str(tiny_random_whisper), root / "mixed.jsonl", root / "pl",
                                       DecodingOptions(batch_size=4, max_new_tokens=12), top_k=8, shard_size=5,
                                       encoder_state_seconds=10, filters=ALL_OFF), progress=False)
    teacher = load_whisper(str(tiny_random_whisper))
    student, provenance = build_student(teacher.model, StudentSpec((0, 1), (1,), window_seconds=10))
    save_student(student, teacher.processor, provenance, str(tiny_random_whisper), teacher.fingerprint.digest,
                 root / "student")
    return root


def labelled_config(root, out, **sections) -> dict:
    data = config_dict(root, out, **sections)
    data["data"]["train_manifest"] = str(root / "pl" / "pseudo_labels.jsonl")
    return data


def test_reference_rows_equal_a_fresh_teacher_forced_pass(labelled, tiny_random_whisper):
    teacher = load_whisper(str(tiny_random_whisper))
    cache = TopKCache(labelled / "pl")
    rows = records(labelled / "pl")
    assert {r["id"] for r in rows if "reference_topk_index" not in r} == UNLABELLED
    for record in [r for r in rows if "reference_text" in r][:4]:
        reference = text_tokens(teacher.processor.tokenizer, record["reference_text"])
        assert record["reference_tokens"] == reference
        assert reference != record["pseudo_label_tokens"]  # a random teacher's transcript is not the reference
        cached = cache.lookup(record["topk_shard"], record["reference_topk_index"], "reference")
        assert cached.ids.shape[1] == 8
        assert_rows_are_a_fresh_teacher_forced_pass(teacher, record["audio_filepath"], reference, cached)


def test_cached_encoder_states_are_the_teachers_over_the_window(labelled, tiny_random_whisper):
    teacher = load_whisper(str(tiny_random_whisper))
    cache = TopKCache(labelled / "pl")
    record = records(labelled / "pl")[3]
    cached = cache.encoder_states(record["topk_shard"], record["topk_index"], 500)
    with torch.no_grad():
        fresh = teacher.model.model.encoder(log_mel(teacher, [load_audio(record["audio_filepath"])])).last_hidden_state
    assert cached.shape == (500, 64)
    torch.testing.assert_close(cached, fresh[0, :500], rtol=1e-3, atol=1e-2)  # stored as float16


def test_prefer_reference_learns_each_utterance_from_what_it_has(labelled, tiny_random_whisper, tmp_path):
    manifest = labelled / "pl" / "pseudo_labels.jsonl"
    assert count_label_sources(manifest, "prefer_reference") == {"reference": 10, "pseudo_label": 2}
    teacher = load_whisper(str(tiny_random_whisper))
    utts = list(read_manifest(manifest))
    prompt = prompt_tokens(teacher)
    batch = build_decoder_batch(utts, teacher.processor.tokenizer, prompt, 50256, 448, "prefer_reference",
                                TopKCache(labelled / "pl"))
    assert batch.sources == ["pseudo_label" if u.id in UNLABELLED else "reference" for u in utts]
    for i, utt in enumerate(utts):
        expected = utt.extra["pseudo_label_tokens"] if utt.id in UNLABELLED else text_tokens(
            teacher.processor.tokenizer, SPEECH[utt.id.rsplit("-", 1)[0]][1])
        labels = batch.labels[i][batch.labels[i] != -100].tolist()
        assert labels == expected + [50256]
        # The cached teacher row at each label position is the one along that same label.
        n = len(expected) + 1
        assert batch.topk_ids[i, len(prompt) - 1 : len(prompt) - 1 + n].shape[0] == n

    result = distill(from_dict(DistillConfig, labelled_config(labelled, tmp_path / "run", optim={"max_steps": 2})),
                     progress=False)
    assert len(result.losses) == 2
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["labels"] == "prefer_reference" and run["utterances_by_label"] == {"reference": 10, "pseudo_label": 2}


def test_encoder_state_kd_offline_equals_online(labelled, tiny_random_whisper, tmp_path):
    """The cached encoder states are the teacher's own, so the first encoder term is the same whether
    the teacher runs in the loop or not (up to float16 storage)."""
    first = {}
    for mode in ("offline", "online"):
        data = labelled_config(labelled, tmp_path / mode, optim={"max_steps": 2, "freeze_encoder": False},
                               teacher={"mode": mode, "model": str(tiny_random_whisper)},
                               loss={"encoder_kd_weight": 1.0})
        data["student"] = str(labelled / "student")
        distill(from_dict(DistillConfig, data), progress=False)
        log = [json.loads(x) for x in (tmp_path / mode / "log.jsonl").read_text().splitlines()]
        assert len(log) == 2 and all(r["encoder"] > 0 for r in log)
        first[mode] = log[0]["encoder"]
    assert first["offline"] == pytest.approx(first["online"], rel=1e-3)


@pytest.mark.parametrize("sets, message", [
    ({"teacher": {"mode": "none"}, "loss": {"kd_weight": 1.0}}, "there is no teacher for the KL term"),
    ({"loss": {"encoder_kd_weight": 1.0}, "optim": {"freeze_encoder": True}}, "optim.freeze_encoder is true"),
    ({"teacher": {"mode": "none"}, "loss": {"kd_weight": 0.0, "encoder_kd_weight": 1.0}},
     "loss.encoder_kd_weight needs a teacher"),
])
def test_settings_that_could_not_take_effect_are_refused(labelled, tmp_path, sets, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(DistillConfig, labelled_config(labelled, tmp_path / "run", **sets))


def test_labels_the_manifest_lacks_are_refused_before_training(labelled, tmp_path, capsys):
    # References only, but two utterances have none: the run names one of them.
    path = write_config(labelled_config(labelled, tmp_path / "a", data={"labels": "reference"}), tmp_path / "a.yaml")
    assert main(["distill", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert any(f"{u}: no reference transcript" in err for u in UNLABELLED)
    # Pseudo-labels asked of a plain manifest of references.
    data = labelled_config(labelled, tmp_path / "b", data={"labels": "pseudo_label"}, teacher={"mode": "none"},
                           loss={"kd_weight": 0.0})
    data["data"]["train_manifest"] = str(labelled / "full.jsonl")
    assert main(["distill", "--config", str(write_config(data, tmp_path / "b.yaml"))]) == 2
    assert "no pseudo-label" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_cache_without_what_the_run_needs_is_refused(labelled, tiny_random_whisper, tmp_path, capsys):
    """Encoder-state KD offline needs the states cached for the student's whole window."""
    run_pseudo_label(PseudoLabelConfig(str(tiny_random_whisper), labelled / "mixed.jsonl", tmp_path / "pl",
                                       DecodingOptions(batch_size=4, max_new_tokens=12), top_k=8, shard_size=6,
                                       encoder_state_seconds=5), progress=False)
    data = labelled_config(labelled, tmp_path / "run", optim={"freeze_encoder": False}, loss={"encoder_kd_weight": 1.0})
    data["data"]["train_manifest"] = str(tmp_path / "pl" / "pseudo_labels.jsonl")
    assert main(["distill", "--config", str(write_config(data, tmp_path / "c.yaml"))]) == 2
    assert "--encoder-state-seconds 10" in capsys.readouterr().err


def test_a_frozen_encoder_is_computed_once_and_changes_nothing(labelled, tmp_path):
    """Three epochs of 12 utterances: the frozen encoder's states are stored in the first and read
    back afterwards, and the run's losses and weights are those of a run that recomputes them."""
    runs = {}
    for cache in (True, False):
        data = labelled_config(labelled, tmp_path / str(cache), optim={
            "max_steps": 18, "freeze_encoder": True, "cache_frozen_encoder": cache})
        runs[cache] = distill(from_dict(DistillConfig, data), progress=False).losses
    stored = list((tmp_path / "True" / "encoder-cache").glob("*/*.safetensors"))
    assert len(stored) == 12 and not (tmp_path / "False" / "encoder-cache").exists()
    assert runs[True] == pytest.approx(runs[False], rel=1e-6)
    a = load_file(str(tmp_path / "True" / "model" / "model.safetensors"))
    b = load_file(str(tmp_path / "False" / "model" / "model.safetensors"))
    assert all(torch.allclose(a[k], b[k], rtol=1e-5, atol=1e-7) for k in a)


def test_encoder_states_of_a_shard_written_before_clip_spans_are_read_as_they_were(tmp_path):
    """Shards of earlier versions hold the states as one (utterances, P, d) tensor, without offsets."""
    from safetensors.torch import save_file

    states = torch.randn(3, 50, 8)
    save_file({"encoder_states": states.half(), "offsets": torch.tensor([0, 0, 0, 0])},
              str(tmp_path / "old.safetensors"), metadata={"teacher_fingerprint": "x"})
    cache = TopKCache(tmp_path)
    torch.testing.assert_close(cache.encoder_states("old.safetensors", 1, 20), states[1, :20].half().float())
