"""Run configs: YAML files mapped onto typed, frozen dataclasses, checked before any expensive work.

Every key is checked against the dataclass fields (an unknown key is an error, with a suggestion),
every value against its type hint, and each dataclass's own ``__post_init__`` checks what types
cannot say. Field types: bool, int, float, str, Path, ``X | None``, ``Literal[...]``,
``tuple[T, ...]``, ``tuple[A, B]``, ``list[T]``, ``dict[str, T]`` and nested dataclasses.
Dataclasses must be defined at module level so that their string annotations resolve.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import json
import os
import re
import types
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from voxdistill.errors import VoxdistillError
from voxdistill.files import write_text_atomic

T = TypeVar("T")

_KIND = {bool: "a bool (true or false)", int: "an int", float: "a float", str: "a string",
         Path: "a path (a non-empty string)"}


class ConfigError(VoxdistillError):
    """A run config is invalid. ``problems`` holds one line per wrong key, each naming the key."""

    def __init__(self, *problems: str):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader (builds only plain data, never objects), plus two fixes for configs:
    ``1e-4`` is a float, not the string YAML 1.1 makes of it, and a repeated key is an error
    instead of silently keeping the last value."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                if (key_node.tag, key_node.value) in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key_node.value!r}", key_node.start_mark)
                seen.add((key_node.tag, key_node.value))
        return super().construct_mapping(node, deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."))


def from_dict(cls: type[T], data: dict, where: str = "", missing: list[str] | None = None) -> T:
    """Build the dataclass ``cls`` from plain data (as read from YAML), checking every key and value.
    ``where`` is the dotted key of ``data`` inside a larger config, used in messages.
    Raises ConfigError listing every problem found. With a ``missing`` list, a required key that
    ``data`` leaves out is not a problem: its dotted name is appended to the list and its value is
    None (a nested section is built from its defaults) -- a config to show, never to run."""
    return _build(cls, data, where, None, missing)


def _build(cls, data, where: str, base, missing: list[str] | None = None):
    """``base`` is the parent's default instance for this field, if any: keys the config leaves out
    keep its values rather than the class defaults."""
    if not isinstance(data, dict):
        prefix = f"{where}: " if where else ""
        raise ConfigError(f"{prefix}expected a mapping, got {_show(data)}")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    problems = [_unknown_key(key, where, list(fields)) for key in data if key not in fields]
    kwargs = {}
    for name, field in fields.items():
        key = _join(where, name)
        default = getattr(base, name) if base is not None else _default(field)
        if name not in data:
            if default is dataclasses.MISSING and missing is not None:
                tp = hints[name]
                if dataclasses.is_dataclass(tp):
                    kwargs[name] = _build(tp, {}, key, None, missing)
                else:
                    missing.append(key)
                    kwargs[name] = None
            elif default is dataclasses.MISSING:
                problems.append(f"{key}: required ({_type_name(hints[name])})")
            elif base is not None:
                kwargs[name] = default
            continue
        try:
            kwargs[name] = _convert(hints[name], data[name], key, default, missing)
        except ConfigError as e:
            problems.extend(e.problems)
    if problems:
        raise ConfigError(*problems)
    try:
        return cls(**kwargs)
    except ValueError as e:
        raise ConfigError(f"{where or cls.__name__}: {e}") from e


def _convert(tp, value, where: str, default=dataclasses.MISSING, missing: list[str] | None = None):
    origin, args = get_origin(tp), get_args(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, where, default if isinstance(default, tp) else None, missing)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]  # only `X | None` unions are supported
        return _convert(inner, value, where, default, missing)
    if origin is Literal:
        for choice in args:
            if value == choice and type(value) is type(choice):
                return choice
        raise ConfigError(f"{where}: must be one of {', '.join(map(repr, args))}, got {value!r}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {_show(value)}")
        if origin is tuple and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{where}: expected a list of {len(args)} items, got {len(value)}")
            item_types = args
        else:
            item_types = [args[0]] * len(value)
        return origin(_convert(t, v, f"{where}[{i}]") for i, (t, v) in enumerate(zip(item_types, value)))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {_show(value)}")
        for key in value:
            if not isinstance(key, str):
                raise ConfigError(f"{where}: keys must be strings, got {_show(key)}")
        return {key: _convert(args[1], v, f"{where}.{key}") for key, v in value.items()}
    if tp not in _KIND:
        raise TypeError(f"{where}: unsupported config field type {tp!r}")
    if (tp is bool and isinstance(value, bool)) or (tp is str and isinstance(value, str)):
        return value
    number = isinstance(value, (int, float)) and not isinstance(value, bool)  # True is an int to Python
    if tp is int and number and isinstance(value, int):
        return value
    if tp is float and number:
        return float(value)
    if tp is Path and isinstance(value, (str, os.PathLike)) and str(value):
        return Path(value)
    raise ConfigError(f"{where}: expected {_KIND[tp]}, got {_show(value)}")


def to_dict(obj) -> dict:
    """The inverse of from_dict: plain data (Paths as strings, tuples as lists) ready for YAML."""
    return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}


def _plain(value):
    if dataclasses.is_dataclass(value):
        return to_dict(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def apply_overrides(data: dict, overrides: Iterable[str]) -> dict:
    """Apply ``dotted.key=value`` overrides (the CLI's ``--set``) to a copy of ``data``. Each value
    is read as YAML, so ``1e-4``, ``true``, ``[0, 5]`` and ``null`` mean what they say. A mapping
    given for a section is merged into it (``optim={lr: 1e-4}`` is ``optim.lr=1e-4``): the keys it
    names change and the others keep their values, never fall back to the defaults unasked.
    Missing intermediate mappings are created; unknown keys are left for from_dict to report."""
    data = copy.deepcopy(data)
    for item in overrides:
        key, equals, text = item.partition("=")
        parts = key.strip().split(".")
        if not equals or not all(parts):
            raise ConfigError(f"override {item!r}: expected dotted.key=value, e.g. optim.lr=1e-4")
        try:
            value = yaml.load(text, Loader=_Loader)
        except yaml.YAMLError as e:
            raise ConfigError(f"override {item!r}: the value is not valid YAML: {_yaml_problem(e)}") from e
        node = data
        for depth, part in enumerate(parts[:-1], 1):
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {'.'.join(parts[:depth])} is {_show(node)}, "
                                  "not a mapping")
        node[parts[-1]] = _merged(node.get(parts[-1]), value)
    return data


def _merged(old, new):
    """``new`` in place of ``old``; where both are mappings, ``old`` with every key of ``new`` set
    (merged the same way)."""
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return new
    return {**old, **{key: _merged(old.get(key), value) for key, value in new.items()}}


def load_config(cls: type[T], path: str | Path | None, overrides: Iterable[str] = (),
                missing: list[str] | None = None) -> T:
    """Read a YAML config (``None``: start from the defaults), apply overrides, build ``cls``.
    Raises ConfigError naming the file and every problem. ``missing``: see ``from_dict``."""
    data = {} if path is None else _read_yaml(Path(path))
    data = apply_overrides(data, overrides)
    try:
        return from_dict(cls, data, missing=missing)
    except ConfigError as e:
        if path is None:
            raise
        raise ConfigError(*(f"{path}: {problem}" for problem in e.problems)) from e


def _read_yaml(path: Path) -> dict:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the config file: {e.strerror}") from e
    try:
        data = yaml.load(raw, Loader=_Loader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}{at}: invalid YAML: {_yaml_problem(e)}") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of settings (key: value), "
                          f"got a {type(data).__name__}")
    return data


def config_yaml(obj) -> str:
    """The resolved config as YAML, every key in field order."""
    return yaml.safe_dump(to_dict(obj), sort_keys=False, allow_unicode=True)


def resolved_config_yaml(cls: type, path: str | Path | None, overrides: Iterable[str] = ()) -> str:
    """Every key of the ``cls`` config that ``path`` and ``overrides`` resolve to, defaults filled in,
    as YAML (``voxdistill distill --print-config``); keys without a default that they leave out are
    null, and named in a comment at the top."""
    missing: list[str] = []
    config = load_config(cls, path, overrides, missing=missing)
    comment = f"# no default, set them: {', '.join(missing)}\n" if missing else ""
    return comment + config_yaml(config)


def save_config(obj, path: str | Path) -> None:
    """Write the resolved config as YAML, atomically: a reader never sees half a file."""
    write_text_atomic(path, config_yaml(obj))


@dataclasses.dataclass(frozen=True)
class SettingChange:
    key: str  # dotted, e.g. optim.lr
    old: Any
    new: Any

    def __str__(self) -> str:
        return f"{self.key}: {json.dumps(self.old)} -> {json.dumps(self.new)}"


def differences(saved: dict, wanted: dict, prefix: str = "") -> list[SettingChange]:
    """Every leaf setting that differs between two configs as plain data (``to_dict``), by dotted key."""
    changes = []
    for key in {**saved, **wanted}:
        old, new = saved.get(key), wanted.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            changes += differences(old, new, f"{prefix}{key}.")
        elif old != new:
            changes.append(SettingChange(f"{prefix}{key}", old, new))
    return changes


def run_differences(cls, saved: dict, wanted: dict) -> list[SettingChange]:
    """``differences`` between two configs of ``cls`` (plain data) that each name their run folder in
    ``out``, where a path setting that names the same file, or the same place relative to its own
    run folder, is no change: a run folder moved with what it holds, or spelt relative in one and
    absolute in the other, still holds the run of the same settings."""
    paths = {key for key, type_name, _ in describe_fields(cls) if "Path" in type_name.split(" | ")}

    def same_place(key: str, old, new) -> bool:
        if key not in paths or not isinstance(old, str) or not isinstance(new, str):
            return False
        if Path(old).resolve() == Path(new).resolve():
            return True
        return os.path.relpath(old, saved["out"]) == os.path.relpath(new, wanted["out"])

    return [change for change in differences(saved, wanted)
            if not same_place(change.key, change.old, change.new)]


def describe_fields(cls) -> list[tuple[str, str, str]]:
    """(dotted key, type, default as JSON or "required") for every leaf setting, for help texts."""
    rows: list[tuple[str, str, str]] = []
    _describe(cls, "", None, rows)
    return rows


def _describe(cls, prefix: str, base, rows: list) -> None:
    hints = get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if not field.init:
            continue
        key, tp = _join(prefix, field.name), hints[field.name]
        default = getattr(base, field.name) if base is not None else _default(field)
        if dataclasses.is_dataclass(tp):
            _describe(tp, key, default if isinstance(default, tp) else None, rows)
        else:
            shown = "required" if default is dataclasses.MISSING else json.dumps(_plain(default))
            rows.append((key, _type_name(tp), shown))


def _default(field: dataclasses.Field) -> Any:
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def _unknown_key(key, where: str, names: list[str]) -> str:
    key = str(key)
    match = difflib.get_close_matches(key, names, n=1)
    if not match:  # difflib cannot see that `lr` abbreviates `learning_rate`
        match = [n for n in names if _initials(n) == key or _initials(key) == n]
    hint = f"did you mean {match[0]!r}?" if match else f"known keys: {', '.join(names)}"
    return f"unknown key {_join(where, key)!r} ({hint})"


def _initials(name: str) -> str:
    return "".join(word[:1] for word in name.split("_")) if "_" in name else ""


def _yaml_problem(e: yaml.YAMLError) -> str:
    return getattr(e, "problem", None) or str(e)


def _type_name(tp) -> str:
    origin, args = get_origin(tp), get_args(tp)
    if tp is type(None):
        return "None"
    if origin is Literal:
        return " | ".join(map(repr, args))
    if origin in (Union, types.UnionType):
        return " | ".join(map(_type_name, args))
    if origin is None:
        return tp.__name__
    return f"{origin.__name__}[{', '.join('...' if a is Ellipsis else _type_name(a) for a in args)}]"


def _show(value) -> str:
    return "null" if value is None else f"{value!r} ({type(value).__name__})"


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key
