"""Clip-length students: each clip encoded at its own length (padded to the next step, not to the
window), the same in PyTorch and CTranslate2, alone or in a batch, and trained on exactly that."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import WhisperFeatureExtractor

from tests.test_distill import config_dict, setup  # noqa: F401  (the module fixture is reused)
from tests.test_student import random_teacher
from voxdistill.audio import load_audio
from voxdistill.cli import main
from voxdistill.config import from_dict
from voxdistill.data.dataset import encoder_positions_of, length_groups, log_mel, padded_samples
from voxdistill.decoding import NO_CHECKS, DecodingOptions
from voxdistill.distill.config import DistillConfig
from voxdistill.distill.consistency import TeacherMismatchError
from voxdistill.distill.losses import encoder_state_loss
from voxdistill.distill.whisper_trainer import _grouped
from voxdistill.export.exporter import export_model
from voxdistill.families import distill, load_recogniser
from voxdistill.formats import EXPORT_RECORD
from voxdistill.models.loading import load_whisper
from voxdistill.models.student import (
    ClipLengthEncoder, StudentConfigError, StudentSpec, build_student, follow_clip_length, save_student,
)
from voxdistill.runtime import Runtime, generate_tokens

GREEDY = DecodingOptions(batch_size=3, max_new_tokens=16, max_tokens_per_second=None, checks=NO_CHECKS)


def clip_length_student(teacher_folder: Path, out: Path, step: float = 1.0) -> Path:
    teacher = load_whisper(str(teacher_folder))
    student, provenance = build_student(teacher.model, StudentSpec((0, 1), (1,), window_seconds=10,
                                                                   pad_step_seconds=step))
    return save_student(student, teacher.processor, provenance, str(teacher_folder), teacher.fingerprint.digest, out)


@pytest.fixture(scope="module")
def clips(speech_dir) -> list[np.ndarray]:
    return [load_audio(speech_dir / f"{name}.wav") for name in ("fox", "report", "weather")]


@pytest.fixture(scope="module")
def student_1s(tiny_random_whisper, tmp_path_factory) -> Path:
    return clip_length_student(tiny_random_whisper, tmp_path_factory.mktemp("clip") / "student")


def test_padding_follows_the_clip_up_to_the_window():
    fe = WhisperFeatureExtractor(chunk_length=10)
    assert padded_samples(fe, 1) == padded_samples(fe, 5 * 16000) == 160000  # a fixed window
    assert length_groups(fe, [16000, 48000, 100]) == [[0, 1, 2]]
    fe.pad_to_multiple_of = 16000
    assert [padded_samples(fe, n) for n in (1, 16000, 16001, 95000, 200000)] == [16000, 16000, 32000, 96000, 160000]
    assert length_groups(fe, [20000, 16000, 30000, 1000]) == [[0, 2], [1, 3]]
    clip = np.random.default_rng(0).standard_normal(40000).astype(np.float32) * 0.1
    assert log_mel(fe, [clip]).shape == (1, 80, 300)
    # A batch is padded to its longest clip; a clip alone to its own length.
    assert log_mel(fe, [clip, clip[:10000]]).shape == (2, 80, 300)
    assert log_mel(fe, [clip[:10000]]).shape == (1, 80, 100)


def test_clip_length_encoder_is_transformers_at_the_window_and_reads_shorter_clips():
    teacher = random_teacher(layers=2)
    encoder = teacher.model.encoder
    features = torch.randn(2, 80, 3000, generator=torch.Generator().manual_seed(3))
    expected = encoder(features).last_hidden_state
    follow_clip_length(teacher)
    assert isinstance(teacher.model.encoder, ClipLengthEncoder)
    # Its own path (used below the window) computes what transformers does at the window.
    assert torch.equal(teacher.model.encoder.any_length(features).last_hidden_state, expected)
    assert torch.equal(teacher.model.encoder(features).last_hidden_state, expected)
    short = teacher.model.encoder(features[..., :400]).last_hidden_state
    assert short.shape == (2, 200, 64) and torch.isfinite(short).all()
    # The whole model runs on short features, as transformers' generate needs for beam search.
    logits = teacher(input_features=features[..., :400], decoder_input_ids=torch.tensor([[2, 5], [2, 7]])).logits
    assert logits.shape == (2, 2, 512)
    for frames in (401, 3002):  # half an encoder position; longer than the window
        with pytest.raises(ValueError, match="mel frames"):
            teacher.model.encoder(torch.zeros(1, 80, frames))


def test_a_pad_step_must_be_whole_encoder_positions():
    for bad in (0, -1, 0.015, 0.333, float("nan"), float("inf")):
        with pytest.raises(StudentConfigError, match="multiple of 0.02 s"):
            StudentSpec((0,), (0,), pad_step_seconds=bad)
    StudentSpec((0,), (0,), pad_step_seconds=0.5)


def test_clip_length_student_folder(student_1s, tiny_random_whisper):
    assert json.loads((student_1s / "preprocessor_config.json").read_text())["pad_to_multiple_of"] == 16000
    assert json.loads((student_1s / "processor_config.json").read_text())["feature_extractor"]["pad_to_multiple_of"] \
        == 16000
    assert json.loads((student_1s / "student.json").read_text())["pad_step_seconds"] == 1.0
    loaded = load_whisper(str(student_1s))
    assert isinstance(loaded.model.model.encoder, ClipLengthEncoder)
    assert loaded.processor.feature_extractor.pad_to_multiple_of == 16000
    # Another preprocessing is another model: the fingerprint says so.
    fixed = load_whisper(str(tiny_random_whisper))
    assert loaded.fingerprint.preprocessing["clip_pad_step_samples"] == 16000
    assert "clip_pad_step_samples" not in fixed.fingerprint.preprocessing


def test_a_batch_decodes_each_clip_as_alone_in_torch_and_ct2(student_1s, clips, tmp_path):
    torch_student = load_recogniser(str(student_1s))
    fe = torch_student.feature_extractor
    assert len(length_groups(fe, [len(c) for c in clips])) > 1  # the clips pad to different lengths
    alone = [generate_tokens(torch_student, [c], GREEDY)[0] for c in clips]
    assert generate_tokens(torch_student, clips, GREEDY) == alone

    out = export_model(str(student_1s), "ct2", tmp_path / "ct2", "float32")
    assert json.loads((out / EXPORT_RECORD).read_text())["pad_step_seconds"] == 1.0
    assert json.loads((out / "preprocessor_config.json").read_text())["pad_to_multiple_of"] == 16000
    card = (out / "README.md").read_text()
    assert "its own length" in card and "pad_to_multiple_of" in card
    ct2 = load_recogniser(str(out), Runtime("ct2", "float32"), threads=1)
    assert generate_tokens(ct2, clips, GREEDY) == alone
    assert [generate_tokens(ct2, [c], GREEDY)[0] for c in clips] == alone


def test_the_model_card_says_how_a_clip_length_student_reads_audio():
    from voxdistill.export.model_card import _about
    from voxdistill.families.whisper import WHISPER

    provenance = {"window_seconds": {"teacher": 30, "student": 11}, "pad_step_seconds": 0.5}
    about = _about("s", "t", {"parameters": 10}, {"parameters": 20}, provenance, WHISPER.card_kind(provenance))
    assert "at the clip's own length, zero-padded to the next 0.5 s" in about and "longer than 11 s" in about
    assert "11-second windows" not in about


def test_clip_length_tokens_differ_from_window_padding(student_1s, clips, tiny_random_whisper, tmp_path):
    """The padding is real: the same weights padded to the window decode other tokens."""
    record = json.loads((student_1s / "student.json").read_text())
    assert record["window_seconds"]["student"] == 10
    windowed = load_whisper(str(student_1s))
    clip_tokens = generate_tokens(load_recogniser(str(student_1s)), clips[:1], GREEDY)
    fe = windowed.processor.feature_extractor
    del fe.pad_to_multiple_of  # the same model reading the whole 10 s window
    from voxdistill.runtime.torch_backend import TorchRecogniser

    assert generate_tokens(TorchRecogniser(windowed), clips[:1], GREEDY) != clip_tokens


def test_grouped_forward_equals_each_row_alone():
    model = random_teacher(layers=2)
    follow_clip_length(model)
    g = torch.Generator().manual_seed(5)
    short, long = torch.randn(2, 80, 200, generator=g), torch.randn(1, 80, 400, generator=g)
    ids = torch.tensor([[2, 5, 9], [2, 7, 1], [2, 3, 3]])
    groups = [([0, 2], {"input_features": short}), ([1], {"input_features": long})]
    logits, states = _grouped(model, groups, ids)
    assert [rows for rows, _ in states] == [[0, 2], [1]] and [s.shape[1] for _, s in states] == [100, 200]
    with torch.no_grad():
        assert torch.allclose(logits[0], model(input_features=short[:1], decoder_input_ids=ids[:1]).logits[0], atol=1e-5)
        assert torch.allclose(logits[1], model(input_features=long, decoder_input_ids=ids[1:2]).logits[0], atol=1e-5)
        assert torch.allclose(logits[2], model(input_features=short[1:], decoder_input_ids=ids[2:]).logits[0], atol=1e-5)


def test_clip_length_student_trains_with_cached_states_and_resumes_exactly(setup, tiny_random_whisper, tmp_path):  # noqa: F811
    student = clip_length_student(tiny_random_whisper, tmp_path / "student")
    base = {"student": str(student)}
    # 12 utterances in batches of 2: 8 steps cross an epoch, so the second reads the cached states.
    straight = from_dict(DistillConfig, config_dict(setup, tmp_path / "straight", optim={"max_steps": 8, "freeze_encoder": True}) | base)
    split = from_dict(DistillConfig, config_dict(setup, tmp_path / "split", optim={"max_steps": 8, "freeze_encoder": True}) | base)
    losses = distill(straight, progress=False).losses
    assert len(losses) == 8 and all(np.isfinite(losses))
    cached = [load_file(str(f))["states"].shape[0] for f in (tmp_path / "straight" / "encoder-cache").rglob("*.safetensors")]
    assert len(set(cached)) > 1  # states of each clip's own length
    distill(split, progress=False, steps_this_run=5)
    distill(split, progress=False)
    a = load_file(str(tmp_path / "straight" / "model" / "model.safetensors"))
    b = load_file(str(tmp_path / "split" / "model" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    trained = load_whisper(str(tmp_path / "straight" / "model"))
    assert trained.processor.feature_extractor.pad_to_multiple_of == 16000


def encoder_kd_log(setup: Path, teacher_folder: Path, out: Path, pad_step: float, **sections) -> list[float]:
    """The encoder term of each step of an encoder-only run (decoder frozen, no token loss) of a
    clip-length student whose layers are all the teacher's, distilled online (``sections``: more settings)."""
    loaded = load_whisper(str(teacher_folder))
    student, provenance = build_student(loaded.model, StudentSpec((0, 1), (0, 1), window_seconds=30,
                                                                  pad_step_seconds=pad_step))
    folder = save_student(student, loaded.processor, provenance, str(teacher_folder), loaded.fingerprint.digest,
                          out / "student")
    config = config_dict(setup, out / "run", teacher={"mode": "online", "model": str(teacher_folder)},
                         loss={"ce_weight": 0.0, "kd_weight": 0.0, "encoder_kd_weight": 1.0},
                         optim={"freeze_encoder": False, "freeze_decoder": True, "warmup_steps": 0, "lr": 3e-3})
    for key, value in sections.items():
        config[key] = {**config[key], **value}
    distill(from_dict(DistillConfig, config | {"student": str(folder)}), progress=False)
    return [json.loads(line)["encoder"] for line in (out / "run" / "log.jsonl").read_text().splitlines()]


def test_encoder_kd_compares_a_clip_length_student_with_the_teacher_position_by_position(
        setup, tiny_random_whisper, tmp_path):  # noqa: F811
    # Padded to the whole window, the teacher's own encoder gives the teacher's states: nothing to learn.
    assert encoder_kd_log(setup, tiny_random_whisper, tmp_path / "whole", 30.0)[0] < 1e-6
    # Padded to the next second, the same encoder reads less silence and its states differ; training
    # the encoder alone on that term brings them back towards the teacher's at the same positions.
    log = encoder_kd_log(setup, tiny_random_whisper, tmp_path / "clip", 1.0)
    assert log[0] > 1e-3 and log[-1] < 0.5 * log[0]


def test_a_clip_span_compares_only_the_positions_holding_each_clip(setup, tiny_random_whisper, tmp_path):  # noqa: F811
    # One batch of every clip, so the first step's term is over all of them before any update.
    utterances = [json.loads(line) for line in (setup / "pl" / "pseudo_labels.jsonl").read_text().splitlines()]
    whole = {"batch_size": len(utterances), "bucket_size": len(utterances), "shuffle_buffer": 0}
    first = encoder_kd_log(setup, tiny_random_whisper, tmp_path / "span", 1.0, loss={"encoder_kd_span": "clip"},
                           data=whole)[0]
    teacher, student = load_whisper(str(tiny_random_whisper)), load_whisper(str(tmp_path / "span" / "student"))
    fe = student.processor.feature_extractor
    pairs = []
    with torch.inference_mode():
        for u in utterances:
            audio = load_audio(u["audio_filepath"])
            n = encoder_positions_of(fe, len(audio))
            assert n == -(-len(audio) // 320)  # one position per 20 ms, the last partly
            mine = student.model.model.encoder(log_mel(fe, [audio])).last_hidden_state[0, :n]
            theirs = teacher.model.model.encoder(log_mel(teacher.processor.feature_extractor, [audio])).last_hidden_state
            assert mine.shape[0] == n and theirs.shape[1] > mine.shape[0]
            pairs.append((mine, theirs[0, :n]))
    expected = encoder_state_loss(torch.cat([a for a, _ in pairs]), torch.cat([b for _, b in pairs])).item()
    assert first == pytest.approx(expected, rel=1e-4)
    # Over the window (clip and padding) the same batch gives another term.
    window = encoder_kd_log(setup, tiny_random_whisper, tmp_path / "window", 1.0, data=whole)[0]
    assert abs(window - expected) > 1e-3 * expected


def test_a_clip_span_read_from_the_cache_is_the_term_the_teacher_gives_in_the_loop(setup, tiny_random_whisper,  # noqa: F811
                                                                                     tmp_path, capsys):
    """Pseudo-labels that keep each clip's encoder positions (--encoder-state-seconds clip) hold the
    teacher's states over exactly those positions, and distilling from them offline gives the state
    term of the teacher run in the loop (up to their float16 storage)."""
    from voxdistill.teacher.pseudo_label import PseudoLabelConfig, run_pseudo_label
    from voxdistill.teacher.topk import TopKCache

    run_pseudo_label(PseudoLabelConfig(str(tiny_random_whisper), setup / "speech.jsonl", tmp_path / "pl",
                                       GREEDY, top_k=4, shard_size=5, encoder_state_seconds="clip"), progress=False)
    teacher = load_whisper(str(tiny_random_whisper))
    fe = teacher.processor.feature_extractor
    cache = TopKCache(tmp_path / "pl")
    utterances = [json.loads(line) for line in (tmp_path / "pl" / "pseudo_labels.jsonl").read_text().splitlines()]
    lengths = set()
    for u in utterances:
        audio = load_audio(u["audio_filepath"])
        cached = cache.encoder_states(u["topk_shard"], u["topk_index"], 1500)
        with torch.inference_mode():
            fresh = teacher.model.model.encoder(log_mel(fe, [audio])).last_hidden_state[0]
        assert cached.shape == (encoder_positions_of(fe, len(audio)), 64)
        torch.testing.assert_close(cached, fresh[: len(cached)], rtol=1e-3, atol=1e-2)  # float16
        lengths.add(len(cached))
    assert len(lengths) > 1  # each clip its own length, in one shard

    whole = {"batch_size": len(utterances), "bucket_size": len(utterances), "shuffle_buffer": 0}
    online = encoder_kd_log(setup, tiny_random_whisper, tmp_path / "online", 1.0, loss={"encoder_kd_span": "clip"},
                            data=whole)[0]
    offline = encoder_kd_log(setup, tiny_random_whisper, tmp_path / "offline", 1.0, loss={"encoder_kd_span": "clip"},
                             teacher={"mode": "offline"},
                             data=whole | {"train_manifest": str(tmp_path / "pl" / "pseudo_labels.jsonl")})[0]
    assert offline == pytest.approx(online, rel=1e-3)
    # Over the whole window the cache has too little: refused, naming the span.
    with pytest.raises(TeacherMismatchError, match="loss.encoder_kd_span=clip"):
        encoder_kd_log(setup, tiny_random_whisper, tmp_path / "window", 1.0, teacher={"mode": "offline"},
                       data={"train_manifest": str(tmp_path / "pl" / "pseudo_labels.jsonl")})


def test_clip_length_refusals(setup, tiny_random_whisper, tmp_path, capsys):  # noqa: F811
    code = main(["student", "init", "--teacher", str(tiny_random_whisper), "--family", "ctc",
                 "--encoder-layers", "1", "--pad-step", "1", "--out", str(tmp_path / "ctc")])
    assert code == 2 and "--pad-step and --trailing-silence are for Whisper students" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # refused by the parser, before the teacher loads
        main(["student", "init", "--teacher", str(tiny_random_whisper), "--encoder-layers", "2",
              "--decoder-layers", "1", "--pad-step", "0.013", "--out", str(tmp_path / "bad")])
    assert "multiple of 0.02 s" in capsys.readouterr().err
    code = main(["student", "init", "--teacher", str(tiny_random_whisper), "--encoder-layers", "2",
                 "--decoder-layers", "1", "--window-seconds", "10", "--pad-step", "0.5", "--out", str(tmp_path / "ok")])
    assert code == 0 and json.loads((tmp_path / "ok" / "student.json").read_text())["pad_step_seconds"] == 0.5


@pytest.mark.parametrize("step", [100, -320, 0, 16000.5, "16000", True])
def test_a_stored_pad_step_that_is_not_whole_positions_is_refused(student_1s, tmp_path, step):
    import shutil

    from voxdistill.errors import ModelLoadError

    folder = tmp_path / "model"
    shutil.copytree(student_1s, folder)
    for name in ("preprocessor_config.json", "processor_config.json"):
        data = json.loads((folder / name).read_text())
        (data.get("feature_extractor", data))["pad_to_multiple_of"] = step
        (folder / name).write_text(json.dumps(data))
    with pytest.raises(ModelLoadError, match="pad_to_multiple_of is .*multiple of 320"):
        load_whisper(str(folder))


def test_feature_files_that_disagree_are_refused(student_1s, tmp_path):
    import shutil

    from voxdistill.errors import ModelLoadError

    folder = tmp_path / "model"
    shutil.copytree(student_1s, folder)
    data = json.loads((folder / "preprocessor_config.json").read_text())
    data["pad_to_multiple_of"] = 32000  # faster-whisper and CTranslate2's converter read only this file
    (folder / "preprocessor_config.json").write_text(json.dumps(data))
    with pytest.raises(ModelLoadError, match="disagree on pad_to_multiple_of .32000 vs 16000"):
        load_whisper(str(folder))


def test_pruning_a_clip_length_student_measures_each_clip_as_alone(student_1s, speech_dir, tmp_path):
    from tests.test_pseudo_label import speech_manifest
    from voxdistill.data.manifest import read_manifest
    from voxdistill.distill.prune import measure_ffn_importance, prune_student

    manifest = speech_manifest(speech_dir, tmp_path / "calibration.jsonl")
    utterances = list(read_manifest(manifest))
    whisper = load_whisper(str(student_1s))
    batched = measure_ffn_importance(whisper, utterances, manifest.parent, batch_size=3, progress=False)
    alone = measure_ffn_importance(whisper, utterances, manifest.parent, batch_size=1, progress=False)
    for side in ("encoder", "decoder"):
        for a, b in zip(getattr(batched, side), getattr(alone, side)):
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)
    assert batched.encoder_positions == alone.encoder_positions < 3 * 500  # each clip's own length, not the window
    out, _ = prune_student(str(student_1s), manifest, tmp_path / "pruned", keep=0.5, progress=False)
    assert load_whisper(str(out)).processor.feature_extractor.pad_to_multiple_of == 16000


def test_a_clip_length_teacher_is_refused_where_it_cannot_work(setup, student_1s, tmp_path, capsys):  # noqa: F811
    from voxdistill.distill.consistency import TeacherMismatchError
    from voxdistill.teacher.pseudo_label import PseudoLabelConfig, PseudoLabelError, run_pseudo_label

    with pytest.raises(PseudoLabelError, match="its own length"):
        run_pseudo_label(PseudoLabelConfig(str(student_1s), setup / "speech.jsonl", tmp_path / "pl",
                                           GREEDY, top_k=4, encoder_state_seconds=5), progress=False)
    # Online KD would run it on whole batches, padded to their longest clip.
    config = from_dict(DistillConfig, config_dict(setup, tmp_path / "online", teacher={
        "mode": "online", "model": str(student_1s), "allow_mismatch": True}))
    with pytest.raises(TeacherMismatchError, match="teacher.mode=offline"):
        distill(config, progress=False)
    # A step that is no whole number of encoder positions fails in the parser, before any work.
    for bad in ("nan", "0.013", "-1", "x"):
        with pytest.raises(SystemExit):
            main(["demo", "--out", str(tmp_path / "demo"), "--pad-step", bad])
        assert "--pad-step" in capsys.readouterr().err
    assert not (tmp_path / "demo").exists()


def test_trailing_silence_pads_after_the_clip_then_to_the_step():
    fe = WhisperFeatureExtractor(chunk_length=10)
    fe.pad_to_multiple_of = 16000
    fe.min_trailing_silence = 48000
    assert [padded_samples(fe, n) for n in (1, 16000, 16001, 100000, 120000)] == [64000, 64000, 80000, 160000, 160000]
    clip = np.random.default_rng(1).standard_normal(20000).astype(np.float32) * 0.1
    features = log_mel(fe, [clip])
    assert features.shape == (1, 80, 500)  # 20000 + 48000 samples, up to the next 1 s: 5 s
    del fe.min_trailing_silence
    assert torch.equal(log_mel(fe, [clip]), features[..., :200])  # the same frames, without the silence


def test_a_trailing_silence_student_is_recorded_and_decodes_alike_in_torch_and_ct2(tiny_random_whisper, clips,
                                                                                  tmp_path):
    teacher = load_whisper(str(tiny_random_whisper))
    student, provenance = build_student(teacher.model, StudentSpec((0, 1), (1,), window_seconds=10, pad_step_seconds=1,
                                                                   trailing_silence_seconds=2))
    folder = save_student(student, teacher.processor, provenance, str(tiny_random_whisper),
                          teacher.fingerprint.digest, tmp_path / "student")
    assert json.loads((folder / "preprocessor_config.json").read_text())["min_trailing_silence"] == 32000
    assert json.loads((folder / "student.json").read_text())["trailing_silence_seconds"] == 2
    loaded = load_whisper(str(folder))
    assert loaded.fingerprint.preprocessing["clip_trailing_samples"] == 32000  # another model than without it
    assert "clip_trailing_samples" not in load_whisper(str(clip_length_student(tiny_random_whisper, tmp_path / "bare"))
                                                       ).fingerprint.preprocessing
    torch_student = load_recogniser(str(folder))
    alone = [generate_tokens(torch_student, [c], GREEDY)[0] for c in clips]
    assert generate_tokens(torch_student, clips, GREEDY) == alone

    out = export_model(str(folder), "ct2", tmp_path / "ct2", "float32")
    assert json.loads((out / EXPORT_RECORD).read_text())["trailing_silence_seconds"] == 2
    card = (out / "README.md").read_text()
    assert "after at least 2 s of silence" in card
    ct2 = load_recogniser(str(out), Runtime("ct2", "float32"), threads=1)
    assert generate_tokens(ct2, clips, GREEDY) == alone
    # The card's CTranslate2 recipe, run as written on a clip, pads as the model was trained.
    snippet = card.split("or with CTranslate2 directly")[1].split("```python\n")[1].split("```")[0]
    snippet = (snippet.replace("THIS_FOLDER", str(out)).replace('"speech.wav"', repr(str(tmp_path / "clip.wav")))
               .replace("print(", "printed.append("))
    import soundfile

    soundfile.write(tmp_path / "clip.wav", clips[0], 16000)
    printed: list[str] = []
    namespace = {"printed": printed}
    exec(snippet, namespace)
    # A random model runs on to CTranslate2's default length; its first tokens are voxdistill's.
    assert len(printed) == 1 and namespace["result"][0].sequences_ids[0][:len(alone[0])] == alone[0]


def test_trailing_silence_refusals(student_1s, tiny_random_whisper, tmp_path, capsys):
    import shutil

    from voxdistill.errors import ModelLoadError

    with pytest.raises(StudentConfigError, match="needs a pad step"):
        StudentSpec((0,), (0,), trailing_silence_seconds=2)
    for bad in (-1, 0.00001, float("nan")):
        with pytest.raises(StudentConfigError, match="0 or more, a whole number of samples"):
            StudentSpec((0,), (0,), pad_step_seconds=1, trailing_silence_seconds=bad)
    with pytest.raises(SystemExit):  # refused by the parser, before the teacher loads
        main(["student", "init", "--teacher", str(tiny_random_whisper), "--encoder-layers", "2",
              "--decoder-layers", "1", "--pad-step", "1", "--trailing-silence", "-2", "--out", str(tmp_path / "bad")])
    assert "--trailing-silence" in capsys.readouterr().err
    code = main(["student", "init", "--teacher", str(tiny_random_whisper), "--family", "ctc",
                 "--encoder-layers", "1", "--trailing-silence", "1", "--out", str(tmp_path / "ctc")])
    assert code == 2 and "for Whisper students" in capsys.readouterr().err
    for stored, pad_step in ((-16000, 16000), (True, 16000), (1.5, 16000), (16000, None)):
        folder = tmp_path / f"model-{stored}-{pad_step}"
        shutil.copytree(student_1s, folder)
        for name in ("preprocessor_config.json", "processor_config.json"):
            data = json.loads((folder / name).read_text())
            (data.get("feature_extractor", data)).update(min_trailing_silence=stored, pad_to_multiple_of=pad_step)
            (folder / name).write_text(json.dumps(data))
        with pytest.raises(ModelLoadError, match="min_trailing_silence is"):
            load_whisper(str(folder))
