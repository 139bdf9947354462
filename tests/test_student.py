"""Student construction: layer selection, depth copies, width cuts, saving a loadable folder."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
import transformers
from transformers import WhisperConfig, WhisperForConditionalGeneration

from voxdistill.files import OutputError
from voxdistill.models.loading import load_whisper
from voxdistill.models.student import (
    STUDENT_FILE, StudentConfigError, StudentSpec, build_student, parse_layers, save_student,
    select_layers,
)

FEATURES = torch.randn(1, 80, 3000, generator=torch.Generator().manual_seed(1))  # (B, n_mels, frames)
DECODER_IDS = torch.tensor([[2, 17, 301, 42, 5]])  # (B, T)


def random_teacher(layers: int = 4, seed: int = 0) -> WhisperForConditionalGeneration:
    """A random Whisper like conftest's ``make_tiny_whisper`` (width 64, heads 2/4, ffn 128), deeper
    and with a small vocabulary, kept in memory."""
    torch.manual_seed(seed)
    config = WhisperConfig(
        vocab_size=512, num_mel_bins=80, d_model=64, encoder_layers=layers, decoder_layers=layers,
        encoder_attention_heads=2, decoder_attention_heads=4, encoder_ffn_dim=128,
        decoder_ffn_dim=128, max_source_positions=1500, max_target_positions=448, init_std=0.2,
        bos_token_id=1, eos_token_id=1, pad_token_id=1, decoder_start_token_id=2,
        suppress_tokens=None, begin_suppress_tokens=None,
    )
    return WhisperForConditionalGeneration(config).eval().requires_grad_(False)


@pytest.fixture(scope="module")
def teacher() -> WhisperForConditionalGeneration:
    return random_teacher()


def logits(model: WhisperForConditionalGeneration) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(input_features=FEATURES, decoder_input_ids=DECODER_IDS).logits  # (B, T, V)


def assert_same_tensors(student_module: torch.nn.Module, teacher_module: torch.nn.Module):
    student_state, teacher_state = student_module.state_dict(), teacher_module.state_dict()
    assert student_state.keys() == teacher_state.keys()
    for name, tensor in teacher_state.items():
        assert torch.equal(student_state[name], tensor), name


# --- layer selection ------------------------------------------------------------------------------

@pytest.mark.parametrize("n_teacher, n_student, expected", [
    (6, 2, [0, 5]), (6, 3, [0, 3, 5]), (4, 4, [0, 1, 2, 3]), (6, 1, [5]), (32, 2, [0, 31]),
    (12, 4, [0, 4, 7, 11]), (1, 1, [0]),
])
def test_select_layers_cases(n_teacher, n_student, expected):
    assert select_layers(n_teacher, n_student) == expected


def test_select_layers_keeps_first_and_last_and_spaces_evenly():
    for n_teacher in range(1, 34):
        for n_student in range(1, n_teacher + 1):
            layers = select_layers(n_teacher, n_student)
            assert len(layers) == n_student and layers == sorted(set(layers))
            assert layers[-1] == n_teacher - 1
            if n_student > 1:
                assert layers[0] == 0
                gaps = np.diff(layers)
                assert gaps.max() - gaps.min() <= 1, (n_teacher, n_student, layers)


@pytest.mark.parametrize("n_student", [0, 5])
def test_select_layers_refuses_impossible_counts(n_student):
    with pytest.raises(StudentConfigError, match="choose from 1 to 4"):
        select_layers(4, n_student)


@pytest.mark.parametrize("spec, expected", [
    ("2", [0, 5]), ("3", [0, 3, 5]), ("0,5", [0, 5]), (" 1, 3 ", [1, 3]), ("4,", [4]),
])
def test_parse_layers(spec, expected):
    assert parse_layers(spec, 6) == expected


@pytest.mark.parametrize("spec, message", [
    ("0", "keep from 1 to 6"),
    ("7", "the teacher has 6 layers"),
    ("1,1", "repeats a layer"),
    ("0,6", r"\[6\] out of range, the teacher has 6 layers"),
    ("-1,2", r"\[-1\] out of range"),
    ("3,1", "not in increasing order"),
    ("two", "not integers"),
    ("1.5", "not integers"),
    ("", "not integers"),
])
def test_parse_layers_refuses(spec, message):
    with pytest.raises(StudentConfigError, match=message):
        parse_layers(spec, 6, name="--encoder-layers")


def test_spec_is_validated_when_built():
    assert StudentSpec([0, 3], [3]).encoder_layers == (0, 3)
    with pytest.raises(StudentConfigError, match="at least 1 layer"):
        StudentSpec((), (0,))
    with pytest.raises(StudentConfigError, match="d_model=0"):
        StudentSpec((0,), (0,), d_model=0)


# --- depth --------------------------------------------------------------------------------------

def test_depth_student_copies_the_chosen_layers(teacher):
    student, provenance = build_student(teacher, StudentSpec((0, 3), (1, 3)))
    assert (student.config.encoder_layers, student.config.decoder_layers) == (2, 2)
    assert (len(student.model.encoder.layers), len(student.model.decoder.layers)) == (2, 2)
    for i, t in enumerate((0, 3)):
        assert_same_tensors(student.model.encoder.layers[i], teacher.model.encoder.layers[t])
    for i, t in enumerate((1, 3)):
        assert_same_tensors(student.model.decoder.layers[i], teacher.model.decoder.layers[t])
    for part in ("conv1", "conv2", "embed_positions", "layer_norm"):
        assert_same_tensors(getattr(student.model.encoder, part), getattr(teacher.model.encoder, part))
    for part in ("embed_tokens", "embed_positions", "layer_norm"):
        assert_same_tensors(getattr(student.model.decoder, part), getattr(teacher.model.decoder, part))
    assert student.proj_out.weight is student.model.decoder.embed_tokens.weight
    # Trainable, unlike the frozen teacher; Whisper itself fixes the encoder's sinusoidal positions.
    frozen = {name for name, p in student.named_parameters() if not p.requires_grad}
    assert frozen == {"model.encoder.embed_positions.weight"}
    assert provenance["encoder_layers"] == [0, 3] and provenance["decoder_layers"] == [1, 3]
    assert provenance["width_initialisation"] == ["none: the teacher's widths, layers copied exactly"]


def test_student_with_every_layer_is_the_teacher(teacher):
    student, _ = build_student(teacher, StudentSpec((0, 1, 2, 3), (0, 1, 2, 3)))
    assert torch.equal(logits(student), logits(teacher))


def test_student_layer_out_of_range_is_refused(teacher):
    with pytest.raises(StudentConfigError, match=r"decoder layers: \[4\] out of range"):
        build_student(teacher, StudentSpec((0,), (0, 4)))


def test_alignment_heads_follow_the_kept_decoder_layers():
    teacher = random_teacher()
    teacher.generation_config.alignment_heads = [[1, 0], [3, 2], [2, 1]]
    student, provenance = build_student(teacher, StudentSpec((3,), (0, 3)))
    assert student.generation_config.alignment_heads == [[1, 2]]
    assert provenance["alignment_heads"].startswith("kept 1 of the teacher's 3")
    student, _ = build_student(teacher, StudentSpec((3,), (0,)))  # no teacher head survives
    assert student.generation_config.alignment_heads == [[0, h] for h in range(4)]
    assert teacher.generation_config.alignment_heads == [[1, 0], [3, 2], [2, 1]]


# --- width --------------------------------------------------------------------------------------

def test_ffn_cut_keeps_the_most_important_neurons(teacher):
    student, provenance = build_student(teacher, StudentSpec((0, 3), (3,), ffn_dim=48))
    for stack, kept in ((("encoder", 0), 0), (("encoder", 1), 3), (("decoder", 0), 3)):
        (side, i), t = stack, kept
        s_layer = getattr(student.model, side).layers[i]
        t_layer = getattr(teacher.model, side).layers[t]
        assert s_layer.fc1.weight.shape == (48, 64) and s_layer.fc2.weight.shape == (64, 48)
        importance = t_layer.fc1.weight.norm(dim=1) * t_layer.fc2.weight.norm(dim=0)  # (128,)
        expected = importance.topk(48).indices.sort().values
        dropped = torch.ones(128, dtype=torch.bool)
        dropped[expected] = False
        assert importance[expected].min() > importance[dropped].max()
        assert torch.equal(s_layer.fc1.weight, t_layer.fc1.weight[expected])
        assert torch.equal(s_layer.fc1.bias, t_layer.fc1.bias[expected])
        assert torch.equal(s_layer.fc2.weight, t_layer.fc2.weight[:, expected])
        assert torch.equal(s_layer.fc2.bias, t_layer.fc2.bias)
        assert torch.equal(s_layer.self_attn.q_proj.weight, t_layer.self_attn.q_proj.weight)
    assert student.config.encoder_ffn_dim == student.config.decoder_ffn_dim == 48
    assert provenance["width_initialisation"] == [
        "ffn: kept the 48 of 128 neurons per layer with the largest ||fc1 row||·||fc2 col||"
    ]
    assert logits(student).isfinite().all()


def test_ffn_dim_of_the_teacher_changes_nothing(teacher):
    student, _ = build_student(teacher, StudentSpec((0, 1, 2, 3), (0, 1, 2, 3), ffn_dim=128))
    assert torch.equal(logits(student), logits(teacher))


def test_pruning_dead_neurons_keeps_the_output():
    teacher = random_teacher(layers=2, seed=3)
    dead = torch.randperm(128, generator=torch.Generator().manual_seed(0))[:40]
    for layer in [*teacher.model.encoder.layers, *teacher.model.decoder.layers]:
        layer.fc1.weight[dead] = 0.0  # gelu(0·x + 0) = 0: these neurons never write anything
        layer.fc1.bias[dead] = 0.0
    student, _ = build_student(teacher, StudentSpec((0, 1), (0, 1), ffn_dim=88))
    kept = student.model.encoder.layers[0].fc1.weight
    assert kept.shape == (88, 64) and kept.norm(dim=1).min() > 0
    # Not bit-equal: the fc2 sums run over fewer terms, so their rounding differs.
    torch.testing.assert_close(logits(student), logits(teacher), rtol=1e-5, atol=1e-4)


def test_d_model_cut(teacher):
    student, provenance = build_student(teacher, StudentSpec((0, 3), (0, 3), d_model=32, ffn_dim=64))
    encoder, decoder = student.model.encoder, student.model.decoder
    assert encoder.conv1.weight.shape == (32, 80, 3) and encoder.conv2.weight.shape == (32, 32, 3)
    assert encoder.embed_positions.weight.shape == (1500, 32)
    assert decoder.embed_tokens.weight.shape == (512, 32)
    assert decoder.embed_positions.weight.shape == (448, 32)
    assert student.proj_out.weight is decoder.embed_tokens.weight
    cross = decoder.layers[1].encoder_attn
    assert cross.k_proj.weight.shape == (32, 32) and cross.head_dim == 8
    assert encoder.layers[0].self_attn.head_dim == 16
    assert decoder.layers[0].fc1.weight.shape == (64, 32)
    assert decoder.layers[0].final_layer_norm.weight.shape == (32,)
    # The decoder keeps the residual dimensions with the largest mean |token embedding|.
    t_embed = teacher.model.decoder.embed_tokens.weight
    dims = t_embed.abs().mean(dim=0).topk(32).indices.sort().values
    assert torch.equal(decoder.embed_tokens.weight, t_embed[:, dims])
    assert torch.equal(decoder.layer_norm.weight, teacher.model.decoder.layer_norm.weight[dims])
    out = logits(student)
    assert out.shape == (1, DECODER_IDS.shape[1], 512) and out.isfinite().all()
    width = " ".join(provenance["width_initialisation"])
    assert "d_model: kept 32 of 64 residual dimensions by magnitude" in width
    assert "first 16 of 32 coordinates (encoder)" in width and "first 8 of 16 coordinates (decoder)" in width
    assert provenance["student_shape"]["d_model"] == 32


@pytest.mark.parametrize("spec, message", [
    (StudentSpec((0,), (0,), d_model=30), "not divisible by the decoder's 4 attention heads"),
    (StudentSpec((0,), (0,), d_model=128), "d_model 128 is wider than the teacher's 64"),
    (StudentSpec((0,), (0,), ffn_dim=256), "ffn_dim 256 is wider than the teacher's 128"),
])
def test_impossible_widths_are_refused(teacher, spec, message):
    with pytest.raises(StudentConfigError, match=message):
        build_student(teacher, spec)


# --- saving -------------------------------------------------------------------------------------

def test_saved_student_loads_in_a_pipeline_and_transcribes(tmp_path, tiny_random_whisper):
    whisper = load_whisper(str(tiny_random_whisper))
    student, provenance = build_student(whisper.model, StudentSpec((1,), (1,), d_model=32, ffn_dim=64))
    out = tmp_path / "student"
    out.mkdir()  # an empty folder may be written into
    assert save_student(student, whisper.processor, provenance, whisper.source,
                        whisper.fingerprint.digest, out) == out
    for name in ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
                 "processor_config.json", STUDENT_FILE):  # the feature extractor is in processor_config
        assert (out / name).is_file(), name
    assert [p.name for p in tmp_path.iterdir()] == ["student"]  # no temporary folder left
    record = json.loads((out / STUDENT_FILE).read_text())
    assert record["teacher"] == {"source": str(tiny_random_whisper),
                                 "fingerprint": whisper.fingerprint.digest}
    assert record["encoder_layers"] == [1] and record["decoder_layers"] == [1]
    assert record["width_initialisation"] == provenance["width_initialisation"]

    reloaded = WhisperForConditionalGeneration.from_pretrained(out)
    assert_same_tensors(reloaded, student)
    assert reloaded.generation_config.to_dict() == student.generation_config.to_dict()
    pipe = transformers.pipeline("automatic-speech-recognition", model=str(out))
    # A random student rarely says end-of-text: cap the tokens so the test does not decode 448.
    result = pipe(np.zeros(16000, dtype=np.float32), generate_kwargs={"max_new_tokens": 8})
    assert isinstance(result, dict) and isinstance(result["text"], str)


def test_save_refuses_a_folder_that_is_not_empty(tmp_path, teacher):
    out = tmp_path / "student"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    student, provenance = build_student(teacher, StudentSpec((0,), (0,)))
    with pytest.raises(OutputError, match="already exists and is not an empty folder"):
        save_student(student, None, provenance, "teacher", "0" * 16, out)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["student"]


def test_teacher_is_not_changed_by_building(teacher):
    before = copy.deepcopy(teacher.state_dict())
    build_student(teacher, StudentSpec((0, 3), (3,), d_model=32, ffn_dim=64))
    after = teacher.state_dict()
    assert all(torch.equal(after[name], tensor) for name, tensor in before.items())


# --- a shorter window ---------------------------------------------------------------------------

def test_window_student_keeps_the_first_positions_and_pads_to_its_window(tmp_path, tiny_random_whisper, speech_dir):
    from voxdistill.audio import load_audio
    from voxdistill.decoding import log_mel
    from voxdistill.transcribe import transcribe_audio

    teacher = load_whisper(str(tiny_random_whisper))
    student, provenance = build_student(teacher.model, StudentSpec((0, 1), (1,), window_seconds=10))
    assert student.config.max_source_positions == 500 and provenance["window_seconds"] == {"teacher": 30, "student": 10}
    assert torch.equal(student.model.encoder.embed_positions.weight,
                       teacher.model.model.encoder.embed_positions.weight[:500])
    out = save_student(student, teacher.processor, provenance, teacher.source, teacher.fingerprint.digest,
                       tmp_path / "student")
    windowed = load_whisper(str(out))
    fe = windowed.processor.feature_extractor
    assert (fe.chunk_length, fe.n_samples, fe.nb_max_frames) == (10, 160000, 1000)
    # For a clip shorter than both windows, the 10 s features are the first 1000 frames of the 30 s ones:
    # the student reads the same frames as the teacher, with less padding after them.
    clip = load_audio(speech_dir / "fox.wav")
    student_features, teacher_features = log_mel(windowed, [clip]), log_mel(teacher, [clip])
    assert student_features.shape == (1, 80, 1000)
    # 1000 frames against 3000: other matrix shapes, which a CPU's kernels may sum in another order;
    # a shifted frame or other padding is off by far more than the tolerance.
    torch.testing.assert_close(student_features, teacher_features[..., :1000], rtol=0, atol=1e-5)
    # Audio longer than the window is planned in chunks of at most the model's window, and their
    # transcripts are merged.
    from voxdistill.long_audio import merge_transcripts, plan_chunks

    long = np.concatenate([clip] * 8)[: 25 * 16000]
    plan = plan_chunks(long, fe.n_samples)
    assert len(plan) >= 3 and all(c.end - c.start <= fe.n_samples for c in plan)
    pieces = transcribe_audio(windowed, [long[c.start : c.end] for c in plan])
    assert transcribe_audio(windowed, [long]) == [merge_transcripts(pieces, plan)]
    # transformers loads and runs it unchanged.
    pipe = transformers.pipeline("automatic-speech-recognition", model=str(out))
    assert isinstance(pipe(clip, generate_kwargs={"max_new_tokens": 8})["text"], str)


def test_a_window_longer_than_the_teacher_is_refused(teacher):
    with pytest.raises(StudentConfigError, match="longer than the teacher's 30 s"):
        build_student(teacher, StudentSpec((0,), (0,), window_seconds=40))
    with pytest.raises(StudentConfigError, match="window_seconds"):
        StudentSpec((0,), (0,), window_seconds=0)
