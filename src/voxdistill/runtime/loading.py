"""A Whisper model (a teacher, or a Whisper student) in the ``torch`` or ``ct2`` runtime: loaded from
a model argument (`load_whisper_recogniser`), or a `models.loading.Whisper` already in memory
wrapped as the torch one (`as_recogniser`)."""

from __future__ import annotations

import torch

from voxdistill.models.loading import Whisper
from voxdistill.runtime import WHISPER_BACKENDS, Recogniser, Runtime, RuntimeConfigError
from voxdistill.runtime.ct2_backend import load_ct2_recogniser
from voxdistill.runtime.torch_backend import TorchRecogniser, load_torch_recogniser


def load_whisper_recogniser(model: str, runtime: Runtime = Runtime(), threads: int | None = None) -> Recogniser:
    """``model`` (a model argument: bundled name, Hugging Face or CTranslate2 folder, hub id)
    loaded in ``runtime``. A model that is not yet a folder the runtime reads is converted into the
    cache first (CTranslate2 -> Hugging Face for torch; anything else -> CTranslate2 for ct2, through
    `formats.ctranslate2.ct2_folder_for`, weights stored as the compute type).
    ``threads``: the runtime's intra-op threads (None: torch's current setting)."""
    if runtime.backend not in WHISPER_BACKENDS:
        raise RuntimeConfigError(f"{model}: a Whisper model runs in {' or '.join(WHISPER_BACKENDS)}; "
                                 f"--runtime {runtime.backend} runs CTC students")
    if runtime.backend == "torch":
        return load_torch_recogniser(model, runtime.compute_type)
    return load_ct2_recogniser(model, runtime.compute_type, threads or torch.get_num_threads())


def as_recogniser(model: Whisper | Recogniser) -> Recogniser:
    """``model`` itself if it is a recogniser; a loaded `models.loading.Whisper` wrapped as the torch one."""
    return TorchRecogniser(model) if isinstance(model, Whisper) else model
