"""Student families: one module per family saying all that is particular to it, so that no stage
tests which family a model is.

- `families.whisper`: encoder-decoder students made of the teacher's layers, and every other
  Whisper model (teachers included);
- `families.ctc`: the teacher's encoder layers under a CTC head over characters.

Each implements `base.StudentFamily`: how its folder is recognised, how it is loaded into each
runtime it has, its trainer (which loads, trains with its loss, transcribes the dev set and saves
its student), each export format it has, and what its model card says. A stage asks the family of
a model, `family_of`: ``distill`` for its trainer (`distill` below), the runtime for its recogniser
(`load_recogniser` below), ``evaluate`` for the runtime option that applies to it, ``export`` for
its formats and writer, the model card for its sections. A family is tested for (`is_ctc_folder`,
a comparison with a family's name) nowhere outside this package: tests/test_architecture.py checks.

Adding a third family
---------------------
The whole diff outside the family's own new code is one new module and one registered instance;
for a transducer student, say::

    src/voxdistill/families/transducer.py   (new)
        class TransducerFamily(StudentFamily):
            name = "transducer"; title = "transducer student"; folder_description = "..."
            runtimes = ("torch",); runtime_option = "runtime"; export_formats = ("hf",)
            def recognises(self, model): ...     # e.g. its folder holds transducer_config.json
            def load_recogniser(self, model, runtime, threads): ...
            def trainer(self, config, allow_config_change): ...
            def export(self, model, format, folder, quantization): ...
            def card_kind(self, provenance): ...
            def card_usage(self, model_dir): ...
            def export_card_usage(self, record): ...
        TRANSDUCER = TransducerFamily()

    src/voxdistill/families/__init__.py
        +from voxdistill.families.transducer import TRANSDUCER
        -FAMILIES = (WHISPER, CTC)
        +FAMILIES = (WHISPER, CTC, TRANSDUCER)

No stage module changes. What the family module refers to is new code in the layer it belongs to,
imported by nothing but the family module: its model (``models/``), its trainer (a subclass of
`distill.trainer.Trainer` in ``distill/``), its recogniser (``runtime/``), its export writer
(``formats/``). Two things are shared rather than per family: ``runtime_option`` names an existing
``evaluate`` setting (a family that needs a runtime of its own choosing beside the others needs a
new option), and a new runtime backend is a new name in `runtime.BACKENDS`. Building a new student from a teacher
(``student init --family``, `families.student_init`) takes each family's own options, so a third
family also adds its branch and options there: the one place besides its module.
"""

from __future__ import annotations

from pathlib import Path

from voxdistill.distill.config import DistillConfig
from voxdistill.distill.trainer import TrainResult
from voxdistill.families.base import StudentFamily
from voxdistill.families.ctc import CTC
from voxdistill.families.whisper import WHISPER
from voxdistill.files import check_writable_output, is_first_process, output_lock
from voxdistill.runtime import Recogniser, Runtime

FAMILIES: tuple[StudentFamily, ...] = (WHISPER, CTC)  # every family, in the order messages list them


def family_of(model: str | Path) -> StudentFamily:
    """The family of ``model`` (any model argument): the one whose files its folder holds. A model
    argument no family recognises is Whisper's: a bundled name, a hub id, or a folder whose problem
    `models.loading.load_whisper` then explains."""
    return next((family for family in FAMILIES if family.recognises(model)), WHISPER)


def load_recogniser(model: str, runtime: Runtime = Runtime(), threads: int | None = None) -> Recogniser:
    """``model`` (a model argument: bundled name, Hugging Face, CTranslate2 or CTC student folder, hub
    id) loaded in ``runtime`` as its family runs it. A model that is not yet a folder the runtime reads
    is converted into the cache first (`formats`). ``threads``: the runtime's intra-op threads (None:
    torch's current setting)."""
    return family_of(model).load_recogniser(model, runtime, threads)


def distill(config: DistillConfig, progress: bool = True, steps_this_run: int | None = None,
            allow_config_change: bool = False) -> TrainResult:
    """Train ``config.student`` with its family's trainer (see `distill.trainer.Trainer.run`), holding
    the lock of the run folder (`files.output_lock`; a multi-process run, in its first process)."""
    check_writable_output(config.out, "folder")
    with output_lock(config.out, enabled=is_first_process()):
        return family_of(config.student).trainer(config, allow_config_change).run(progress, steps_this_run)
