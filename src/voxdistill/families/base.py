"""What every student family implements (`StudentFamily`): the questions the stages ask of a model's
family instead of testing which family it is."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from voxdistill.distill.config import DistillConfig
    from voxdistill.distill.trainer import Trainer
    from voxdistill.runtime import Recogniser, Runtime


class Exported(NamedTuple):
    """What a family's export wrote, for the card `export` writes beside it."""

    record: dict  # the export record written into the folder (formats.EXPORT_RECORD)
    source_card: Path | None  # the source's model card, which the exported folder's card starts from


class StudentFamily(ABC):
    """One family of models: how its folder is recognised, how it runs (loaded into each runtime it
    has), how it trains (its trainer: loading, loss, dev transcription, saving), how it is exported
    (each format it has) and what its model card says. A stage takes the family `families.family_of`
    gives it and asks; no stage names a family."""

    name: str  # the family as a student's student.json records it ("family") and the CLI names it
    title: str  # what a message calls one of its models: "a {title}"
    folder_description: str  # how its folder is told apart, for a message naming what a folder is not
    runtimes: tuple[str, ...]  # the runtime backends it runs in (`runtime.Runtime.backend`)
    # The evaluation setting that picks its runtime (a field of `evaluation.evaluate.EvalSettings`,
    # an option of `voxdistill evaluate`): every model of the family in one evaluation runs there.
    runtime_option: str
    export_formats: tuple[str, ...]  # the `voxdistill export --format`s it is written in

    @abstractmethod
    def recognises(self, model: str | Path) -> bool:
        """Whether ``model`` (a model argument) is a folder of this family, told by the files in it."""

    @abstractmethod
    def load_recogniser(self, model: str, runtime: Runtime, threads: int | None) -> Recogniser:
        """``model`` loaded in ``runtime`` (a `runtime.RuntimeConfigError` for one it does not run
        in); ``threads``: the runtime's intra-op threads (None: torch's current setting)."""

    @abstractmethod
    def trainer(self, config: DistillConfig, allow_config_change: bool) -> Trainer:
        """The trainer of ``config.student``, a folder of this family."""

    @abstractmethod
    def export(self, model: str, format: str, folder: Path, quantization: str) -> Exported:
        """Write ``model`` as ``format`` (one of `export_formats`; weights stored as ``quantization``
        where the format has a choice) into the existing, empty ``folder``, with its export record."""

    @abstractmethod
    def card_kind(self, provenance: Mapping) -> str:
        """What kind of model a student of the family is, completing "a ... distilled from the
        teacher" on its model card (``provenance``: its student.json)."""

    @abstractmethod
    def card_usage(self, model_dir: Path) -> str:
        """The "How to use" section of the model card of the student in ``model_dir``."""

    @abstractmethod
    def export_card_usage(self, record: Mapping) -> str | None:
        """The "How to use" section of the card of a folder exported with export record ``record``
        (``THIS_FOLDER`` stands for its location); None: such a folder carries no card."""
