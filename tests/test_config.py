"""Run configs: round trip, defaults, one clear message per kind of mistake, overrides, safe YAML."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from voxdistill.config import (ConfigError, apply_overrides, describe_fields, from_dict, load_config,
                               save_config, to_dict)
from voxdistill.errors import VoxdistillError


@dataclass(frozen=True)
class Optim:
    lr: float = 1e-3
    betas: tuple[float, ...] = (0.9, 0.98)
    warmup_steps: int = 0


@dataclass(frozen=True)
class Loss:
    mode: Literal["online", "offline", "none"] = "online"
    weights: dict[str, float] = field(default_factory=lambda: {"ce": 1.0, "kl": 0.5})
    temperature: float | None = None

    def __post_init__(self):
        if self.temperature is not None and self.temperature <= 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")


@dataclass(frozen=True)
class Data:
    train_manifest: Path
    dev_manifest: Path | None = None
    duration_range: tuple[float, float] = (0.5, 30.0)


@dataclass(frozen=True)
class Run:
    data: Data
    optim: Optim = Optim(lr=5e-4)  # differs from Optim's own default on purpose
    loss: Loss = field(default_factory=Loss)
    keep_layers: list[int] = field(default_factory=lambda: [0, 3])
    seed: int = 0
    use_ema: bool = False
    name: str = "run"


MINIMAL = {"data": {"train_manifest": "train.jsonl"}}


def build(**changes) -> Run:
    return from_dict(Run, {**MINIMAL, **changes})


def problem(data: dict) -> str:
    with pytest.raises(ConfigError) as caught:
        from_dict(Run, data)
    return str(caught.value)


def test_round_trip():
    run = Run(data=Data(Path("a/train.jsonl"), Path("dev.jsonl")), optim=Optim(2e-5, (0.8, 0.9), 100),
              loss=Loss("offline", {"kl": 1.0}, 2.0), keep_layers=[0, 5], seed=3, use_ema=True, name="x")
    plain = to_dict(run)
    assert plain == {
        "data": {"train_manifest": "a/train.jsonl", "dev_manifest": "dev.jsonl", "duration_range": [0.5, 30.0]},
        "optim": {"lr": 2e-5, "betas": [0.8, 0.9], "warmup_steps": 100},
        "loss": {"mode": "offline", "weights": {"kl": 1.0}, "temperature": 2.0},
        "keep_layers": [0, 5], "seed": 3, "use_ema": True, "name": "x",
    }
    assert from_dict(Run, plain) == run


def test_defaults_and_partial_nested_mapping_keeps_the_parent_default():
    assert build() == Run(data=Data(Path("train.jsonl")))
    assert build().optim.lr == 5e-4
    assert build(optim={"warmup_steps": 10}).optim == Optim(lr=5e-4, warmup_steps=10)


def test_int_is_accepted_for_a_float():
    lr = build(optim={"lr": 1}).optim.lr
    assert lr == 1.0 and type(lr) is float


@pytest.mark.parametrize("changes, message", [
    ({"sed": 1}, "unknown key 'sed' (did you mean 'seed'?)"),
    ({"optim": {"learning_rate": 1}}, "unknown key 'optim.learning_rate' (did you mean 'lr'?)"),
    ({"optim": {"zzz": 1}}, "unknown key 'optim.zzz' (known keys: lr, betas, warmup_steps)"),
    ({"optim": {"lr": "fast"}}, "optim.lr: expected a float, got 'fast' (str)"),
    ({"optim": {"lr": True}}, "optim.lr: expected a float, got True (bool)"),
    ({"seed": "3"}, "seed: expected an int, got '3' (str)"),
    ({"seed": True}, "seed: expected an int, got True (bool)"),
    ({"seed": 1.5}, "seed: expected an int, got 1.5 (float)"),
    ({"seed": None}, "seed: expected an int, got null"),
    ({"use_ema": "maybe"}, "use_ema: expected a bool (true or false), got 'maybe' (str)"),
    ({"use_ema": 1}, "use_ema: expected a bool (true or false), got 1 (int)"),
    ({"name": 5}, "name: expected a string, got 5 (int)"),
    ({"data": {"train_manifest": 3}}, "data.train_manifest: expected a path (a non-empty string), got 3 (int)"),
    ({"data": {"train_manifest": ""}}, "data.train_manifest: expected a path (a non-empty string), got '' (str)"),
    ({"data": {}}, "data.train_manifest: required (Path)"),
    ({"data": {"train_manifest": "t", "duration_range": [1]}}, "data.duration_range: expected a list of 2 items, got 1"),
    ({"data": {"train_manifest": "t", "duration_range": [1, "x"]}},
     "data.duration_range[1]: expected a float, got 'x' (str)"),
    ({"data": None}, "data: expected a mapping, got null"),
    ({"optim": 3}, "optim: expected a mapping, got 3 (int)"),
    ({"optim": {"betas": 0.9}}, "optim.betas: expected a list, got 0.9 (float)"),
    ({"keep_layers": [0, "x"]}, "keep_layers[1]: expected an int, got 'x' (str)"),
    ({"loss": {"weights": {"kl": "high"}}}, "loss.weights.kl: expected a float, got 'high' (str)"),
    ({"loss": {"weights": {1: 0.5}}}, "loss.weights: keys must be strings, got 1 (int)"),
    ({"loss": {"mode": "onlin"}}, "loss.mode: must be one of 'online', 'offline', 'none', got 'onlin'"),
    ({"loss": {"temperature": -1}}, "loss: temperature must be positive, got -1.0"),
])
def test_each_mistake_gets_a_message_naming_the_key(changes, message):
    assert problem({**MINIMAL, **changes}) == message


def test_missing_required_section_and_non_mapping_top_level():
    assert problem({}) == "data: required (Data)"
    assert problem([1]) == "expected a mapping, got [1] (list)"


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as caught:
        from_dict(Run, {"sed": 1, "optim": {"lr": "x"}, "loss": {"mode": "no"}})
    assert isinstance(caught.value, VoxdistillError)
    assert caught.value.problems == [
        "unknown key 'sed' (did you mean 'seed'?)",
        "data: required (Data)",
        "optim.lr: expected a float, got 'x' (str)",
        "loss.mode: must be one of 'online', 'offline', 'none', got 'no'",
    ]


def test_post_init_of_the_top_level_names_the_class():
    with pytest.raises(ConfigError, match=r"^Loss: temperature must be positive"):
        from_dict(Loss, {"temperature": 0})


def test_overrides_set_nested_keys_and_create_mappings():
    data = {"optim": {"lr": 1, "warmup_steps": 5}}
    out = apply_overrides(data, ["optim.lr=2", "loss.weights.kl=0.25", "use_ema=true", "name=a=b"])
    assert out == {"optim": {"lr": 2, "warmup_steps": 5}, "loss": {"weights": {"kl": 0.25}},
                   "use_ema": True, "name": "a=b"}
    assert data == {"optim": {"lr": 1, "warmup_steps": 5}}


@pytest.mark.parametrize("text, value", [
    ("1e-4", 1e-4), ("1E5", 1e5), ("-2.5e-3", -2.5e-3), ("1.0e5", 1e5), (".5e1", 5.0), ("0.001", 0.001),
])
def test_scientific_notation_is_a_float(text, value):
    lr = apply_overrides({}, [f"optim.lr={text}"])["optim"]["lr"]
    assert lr == value and type(lr) is float


def test_overrides_build_lists_nulls_and_defaults_without_a_file():
    run = load_config(Run, None, ["data.train_manifest=t.jsonl", "data.dev_manifest=null",
                                  "optim.lr=1e-4", "optim.betas=[0.8, 0.9]", "keep_layers=[0, 5]"])
    assert run == Run(Data(Path("t.jsonl")), Optim(1e-4, (0.8, 0.9)), keep_layers=[0, 5])
    assert apply_overrides({"data": {"dev_manifest": "d"}}, ["data.dev_manifest=null"]) == {
        "data": {"dev_manifest": None}}


@pytest.mark.parametrize("override, message", [
    ("optim.lr", "override 'optim.lr': expected dotted.key=value, e.g. optim.lr=1e-4"),
    ("=3", "override '=3': expected dotted.key=value"),
    ("optim..lr=3", "override 'optim..lr=3': expected dotted.key=value"),
    ("optim.lr.x=3", "override 'optim.lr.x=3': optim.lr is 1 (int), not a mapping"),
    ("optim.betas=[1, 2", "override 'optim.betas=[1, 2': the value is not valid YAML"),
])
def test_malformed_overrides(override, message):
    with pytest.raises(ConfigError) as caught:
        apply_overrides({"optim": {"lr": 1}}, [override])
    assert str(caught.value).startswith(message)


def test_an_unknown_override_key_is_caught_when_building():
    with pytest.raises(ConfigError, match=r"unknown key 'optim.lrr' \(did you mean 'lr'\?\)"):
        load_config(Run, None, ["data.train_manifest=t", "optim.lrr=1e-4"])


def test_save_then_load_gives_an_equal_object(tmp_path):
    run = Run(Data(Path("t.jsonl")), Optim(1e-5, (0.8, 0.9)), Loss("none", {}, 1.5), [1], 7, True, "x")
    path = tmp_path / "run" / "config.yaml"
    save_config(run, path)
    assert load_config(Run, path) == run
    assert path.read_text().startswith("data:\n  train_manifest: t.jsonl\n")
    assert [p.name for p in path.parent.iterdir()] == ["config.yaml"]


def test_load_reads_yaml_and_names_the_file_in_errors(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("data:\n  train_manifest: t.jsonl\noptim:\n  lr: 1e-4\n  learning_rate: 3\n")
    with pytest.raises(ConfigError) as caught:
        load_config(Run, path)
    assert str(caught.value) == f"{path}: unknown key 'optim.learning_rate' (did you mean 'lr'?)"
    path.write_text("data:\n  train_manifest: t.jsonl\noptim:\n  lr: 1e-4\n")
    assert load_config(Run, path).optim.lr == 1e-4


@pytest.mark.parametrize("text, message", [
    ("- a\n- b\n", "the top level must be a mapping of settings (key: value), got a list"),
    ("data:\n  train_manifest: [t\nseed: 1\n", ", line 3, column 5: invalid YAML: expected ',' or ']', but got ':'"),
    ("seed: 1\nname: a\nseed: 2\n", ", line 3, column 1: invalid YAML: duplicate key 'seed'"),
    ("seed: !!python/object/apply:os.system ['echo pwned']\n",
     ", line 1, column 7: invalid YAML: could not determine a constructor for the tag "
     "'tag:yaml.org,2002:python/object/apply:os.system'"),
])
def test_bad_yaml_files(tmp_path, text, message):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(Run, path)
    assert str(caught.value) == f"{path}{'' if message.startswith(',') else ': '}{message}"


def test_empty_file_means_defaults_and_missing_file_is_a_config_error(tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing set\n")
    assert load_config(Optim, empty) == Optim()
    with pytest.raises(ConfigError, match="missing.yaml: cannot read the config file: No such file"):
        load_config(Optim, tmp_path / "missing.yaml")


def test_describe_fields():
    rows = describe_fields(Run)
    assert rows[:5] == [
        ("data.train_manifest", "Path", "required"),
        ("data.dev_manifest", "Path | None", "null"),
        ("data.duration_range", "tuple[float, float]", "[0.5, 30.0]"),
        ("optim.lr", "float", "0.0005"),
        ("optim.betas", "tuple[float, ...]", "[0.9, 0.98]"),
    ]
    assert ("loss.mode", "'online' | 'offline' | 'none'", '"online"') in rows
    assert ("loss.weights", "dict[str, float]", '{"ce": 1.0, "kl": 0.5}') in rows
    assert len(rows) == 13


def test_the_encoder_learning_rate_share_is_validated():
    from voxdistill.distill.config import OptimConfig

    assert from_dict(OptimConfig, {"encoder_lr_scale": 0.1}).encoder_lr_scale == 0.1
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="encoder_lr_scale must be a finite number > 0"):
            from_dict(OptimConfig, {"encoder_lr_scale": bad})
