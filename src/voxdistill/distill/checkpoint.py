"""Complete, atomic checkpoints of a distillation run.

A checkpoint is a folder ``checkpoints/step-00000100/`` holding the student weights
(``model.safetensors``), optimizer state (``optimizer.pt``, read back with ``weights_only=True``),
the trainer state (step, data position, best WER, curriculum phase, as JSON), the RNG states of
every process (``rng-<rank>.pt``), the ASKD self-teacher when there is one
(``self_teacher.safetensors``), and the resolved config. It is written under a temporary name and renamed; ``COMPLETE`` is written last
inside it, and a folder without it is never loaded. The last ``keep_last`` and the best by dev WER
are kept.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_model, save_model

from voxdistill.config import SettingChange, load_config, run_differences, save_config, to_dict
from voxdistill.errors import VoxdistillError
from voxdistill.files import folder_written_atomically

COMPLETE = "COMPLETE"


class ConfigChangedError(VoxdistillError):
    """A run folder would be resumed with settings other than those it was last run with."""


# The settings that decide which weights train, and how they are held. The optimizer state of a
# checkpoint holds moments for exactly the weights that trained before, in their order, and its
# weights file names them as they were held (quantization-aware training and LoRA adapters hold
# every linear weight under a parametrization, which renames and reorders them), so a run cannot go
# on with another choice, not even with --allow-config-change.
WEIGHT_LAYOUT = ("optim.freeze_encoder", "optim.freeze_decoder", "optim.freeze_encoder_stem",
                 "optim.frozen_encoder_layers", "optim.freeze_embeddings", "optim.quantization_aware",
                 "optim.lora_rank", "optim.lora_alpha")


@dataclass
class TrainerState:
    step: int = 0  # optimizer steps done
    epoch: int = 0
    batches_done: int = 0  # global batches of this epoch consumed (all processes)
    best_wer: float | None = None
    best_step: int | None = None
    last_wer: float | None = None  # dev WER of the latest evaluation (the last step's, once training ends)
    phase: str = "distill"  # curriculum phase (see distill.curriculum)
    extra: dict = field(default_factory=dict)


def checkpoint_dir(out: Path, step: int) -> Path:
    return out / "checkpoints" / f"step-{step:08d}"


def complete_checkpoints(out: Path) -> list[Path]:
    folder = out / "checkpoints"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("step-*") if (p / COMPLETE).is_file())


def rng_state() -> dict:
    """The global RNGs (Python, NumPy, torch) in a form ``torch.load(weights_only=True)`` reads."""
    version, python_state, gauss = random.getstate()
    _, keys, pos, has_gauss, cached_gauss = np.random.get_state()
    return {
        "python": [version, list(python_state), gauss],
        "numpy": [torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached_gauss],
        "torch": torch.get_rng_state(),
    }


def set_rng_state(state: dict) -> None:
    version, python_state, gauss = state["python"]
    random.setstate((version, tuple(python_state), gauss))
    keys, pos, has_gauss, cached_gauss = state["numpy"]
    np.random.set_state(("MT19937", keys.numpy().astype(np.uint32), pos, has_gauss, cached_gauss))
    torch.set_rng_state(state["torch"])


def save_checkpoint(out: Path, state: TrainerState, model: torch.nn.Module, optimizer_state: dict,
                    config, rng_states: list[dict] | None = None, self_teacher: torch.nn.Module | None = None) -> Path:
    """Write a checkpoint atomically and return its folder. ``rng_states``: one per process."""
    final = checkpoint_dir(out, state.step)
    # "replace": a re-save of the same step (e.g. interrupted at a checkpoint step)
    with folder_written_atomically(final, existing="replace") as tmp:
        save_model(model, str(tmp / "model.safetensors"))  # stores tied weights once
        torch.save(optimizer_state, tmp / "optimizer.pt")
        if self_teacher is not None:
            save_model(self_teacher, str(tmp / "self_teacher.safetensors"))
        for rank, rng in enumerate(rng_states or [rng_state()]):
            torch.save(rng, tmp / f"rng-{rank}.pt")
        (tmp / "trainer_state.json").write_text(json.dumps(asdict(state), indent=2))
        save_config(config, tmp / "config.yaml")
        (tmp / COMPLETE).write_text("")
    return final


@dataclass
class LoadedCheckpoint:
    folder: Path
    state: TrainerState
    optimizer_state: dict

    def load_model_into(self, model: torch.nn.Module, name: str = "model.safetensors") -> None:
        load_weights(self.folder, model, name)

    def load_self_teacher_into(self, model: torch.nn.Module) -> None:
        self.load_model_into(model, "self_teacher.safetensors")

    def rng(self, rank: int) -> dict | None:
        path = self.folder / f"rng-{rank}.pt"
        return torch.load(path, weights_only=True) if path.is_file() else None


def load_weights(folder: Path, model: torch.nn.Module, name: str = "model.safetensors") -> None:
    """Load a checkpoint's weights (``model.safetensors`` or ``self_teacher.safetensors``) into ``model``."""
    missing, unexpected = load_model(model, str(folder / name))
    if missing or unexpected:
        raise RuntimeError(f"{folder}: checkpoint does not fit the model "
                           f"(missing {missing[:3]}, unexpected {unexpected[:3]})")


def load_checkpoint(folder: Path) -> LoadedCheckpoint:
    return LoadedCheckpoint(
        folder=folder,
        state=TrainerState(**json.loads((folder / "trainer_state.json").read_text())),
        optimizer_state=torch.load(folder / "optimizer.pt", weights_only=True),
    )


def prune_checkpoints(out: Path, keep_last: int, best_step: int | None) -> None:
    """Delete all but the newest ``keep_last`` complete checkpoints and the best one; also
    leftovers of interrupted saves."""
    complete = complete_checkpoints(out)
    keep = set(complete[-keep_last:])
    if best_step is not None:
        keep.add(checkpoint_dir(out, best_step))
    for folder in complete:
        if folder not in keep:
            shutil.rmtree(folder)
    for leftover in (out / "checkpoints").glob(".step-*"):
        shutil.rmtree(leftover, ignore_errors=True)


def resume_config_changes(config, allow: bool) -> list[SettingChange]:
    """The settings of ``config`` that differ from those its run folder was last run with
    (``config.yaml``, else the latest checkpoint's), when there is a checkpoint to resume from;
    without one the run starts from scratch, and its settings are simply the new ones. A change
    raises ConfigChangedError naming every key, unless ``allow``."""
    checkpoints = complete_checkpoints(config.out)
    if not checkpoints:
        return []
    reference = config.out / "config.yaml"
    if not reference.is_file():
        reference = checkpoints[-1] / "config.yaml"
    changes = run_differences(type(config), to_dict(load_config(type(config), reference)), to_dict(config))
    step = json.loads((checkpoints[-1] / "trainer_state.json").read_text())["step"] if changes else 0
    frozen = [c for c in changes if c.key in WEIGHT_LAYOUT]
    if frozen:
        raise ConfigChangedError(
            f"{config.out} was run with other settings ({reference}): {'; '.join(map(str, frozen))}. These "
            f"decide which weights train and how they are held, and the checkpoint at step {step} holds the "
            f"weights and their optimizer moments as they were before, so the run cannot go on with them, "
            f"not even with --allow-config-change: use another out folder")
    if changes and not allow:
        raise ConfigChangedError(
            f"{config.out} was run with other settings ({reference}): {'; '.join(map(str, changes))}. "
            f"Resuming at step {step} with them would mix two runs: run with the same settings, use "
            f"another out folder, or pass --allow-config-change to continue with the new ones "
            f"(recorded in run.json)")
    return changes
