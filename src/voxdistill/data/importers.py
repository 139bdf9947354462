"""Bring users' audio into manifests: a folder of audio files, or a Hugging Face ``datasets``
dataset saved with ``save_to_disk``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import soundfile as sf

from voxdistill.audio import audio_duration
from voxdistill.data.manifest import ManifestError, Utterance, write_manifest
from voxdistill.errors import AudioError
from voxdistill.files import OutputError, check_writable_output, folders_created_for, output_lock

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".opus", ".aiff", ".aif")
# Column names that hold the transcript in common speech datasets, in order of preference.
TEXT_COLUMNS = ("text", "sentence", "transcription", "transcript", "normalized_text")


def is_hf_dataset(path: Path) -> bool:
    """Whether ``path`` is a folder written by ``datasets``' ``save_to_disk``."""
    return any((path / marker).is_file() for marker in ("dataset_dict.json", "state.json", "dataset_info.json"))


def folder_utterances(folder: Path, domain: str | None = None) -> Iterator[Utterance]:
    """Every audio file under ``folder`` (sorted, recursive). A ``.txt`` file with the same stem is
    the transcript. Ids are the relative path without extension, ``/`` replaced by ``_``."""
    folder = folder.resolve()
    if not folder.is_dir():
        raise ManifestError(f"{folder}: not a folder")
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS):
        sidecar = path.with_suffix(".txt")
        text = sidecar.read_text(encoding="utf-8").strip() if sidecar.is_file() else None
        yield Utterance(
            id=str(path.relative_to(folder).with_suffix("")).replace("/", "_"),
            audio_filepath=str(path), duration=round(audio_duration(path), 3),
            text=text or None, domain=domain,
        )


def import_folder(folder: Path, manifest: Path, domain: str | None = None) -> int:
    utterances = list(folder_utterances(folder, domain))
    if not utterances:
        raise ManifestError(f"{folder}: holds no audio file ({', '.join(sorted(AUDIO_EXTENSIONS))}, searched in "
                            f"every subfolder); give the folder of your recordings")
    return write_manifest(manifest, utterances)


def open_hf_dataset(dataset_path: Path, split: str | None = None):
    """A dataset saved with ``datasets``' ``save_to_disk``: (the split chosen, its name). A saved
    DatasetDict needs ``split`` unless it holds one; a single Dataset is named "data"."""
    from datasets import DatasetDict, load_from_disk

    data = load_from_disk(str(dataset_path))
    if isinstance(data, DatasetDict):
        if split is None:
            if len(data) != 1:
                raise ManifestError(f"{dataset_path}: choose a split with --split ({', '.join(data)})")
            split = next(iter(data))
        if split not in data:
            raise ManifestError(f"{dataset_path}: no split {split!r} ({', '.join(data)})")
        data = data[split]
    return data, split or "data"


def import_hf_dataset(data, split: str, dataset_path: Path, out_dir: Path, audio_column: str = "audio",
                      text_column: str | None = None, domain: str | None = None) -> tuple[Path, int]:
    """The ``split`` of a saved dataset (`open_hf_dataset`) -> ``out_dir/<split>.jsonl`` with the
    audio written to ``out_dir/audio/<split>/`` (the audio is read raw and decoded by libsndfile, so
    no extra audio back end is needed). Returns the manifest path and the number of utterances."""
    from datasets import Audio

    if audio_column not in data.column_names:
        raise ManifestError(f"{dataset_path}: no audio column {audio_column!r} (columns: {', '.join(data.column_names)})")
    text_column = text_column or next((c for c in TEXT_COLUMNS if c in data.column_names), None)
    data = data.cast_column(audio_column, Audio(decode=False))

    audio_dir = out_dir / "audio" / split
    audio_dir.mkdir(parents=True, exist_ok=True)

    def utterances() -> Iterator[Utterance]:
        for index, row in enumerate(data):
            utt_id = str(row.get("id") or f"{split}-{index:06d}")
            audio = row[audio_column]
            source = audio.get("path") or f"{utt_id}.wav"
            target = audio_dir / f"{utt_id}{Path(source).suffix or '.wav'}"
            if audio.get("bytes"):
                target.write_bytes(audio["bytes"])
            elif source and Path(source).is_file():
                target.write_bytes(Path(source).read_bytes())
            else:
                raise AudioError(source, f"row {index} of {dataset_path} has neither audio bytes nor a readable path")
            try:
                duration = sf.info(str(target)).duration
            except sf.LibsndfileError as err:
                raise AudioError(str(target), f"cannot decode row {index}: {err.error_string}") from None
            text = row.get(text_column) if text_column else None
            yield Utterance(id=utt_id, audio_filepath=str(target.relative_to(out_dir)),
                            duration=round(duration, 3), text=(text or "").strip() or None, domain=domain)

    manifest = out_dir / f"{split}.jsonl"
    return manifest, write_manifest(manifest, utterances())


def import_source(source: Path, out_dir: Path, *, name: str | None = None, domain: str | None = None,
                  split: str | None = None, audio_column: str = "audio",
                  text_column: str | None = None) -> tuple[Path, int]:
    """`voxdistill corpus import`: a saved ``datasets`` dataset (`import_hf_dataset`, its split,
    audio and text columns) or a folder of audio (`import_folder`, into ``out_dir/<name>.jsonl``,
    by default named after the folder). Returns the manifest path and the number of utterances.
    A manifest already there is never replaced; the output is locked while it is written."""
    out_dir = Path(out_dir)
    check_writable_output(out_dir, "folder")
    if is_hf_dataset(source):
        data, split = open_hf_dataset(source, split)
        with folders_created_for(out_dir / "audio" / split), _new_manifest(out_dir / f"{split}.jsonl"):
            return import_hf_dataset(data, split, source, out_dir, audio_column=audio_column,
                                     text_column=text_column, domain=domain)
    manifest = out_dir / f"{name or source.resolve().name}.jsonl"
    with folders_created_for(out_dir), _new_manifest(manifest):
        return manifest, import_folder(source, manifest, domain=domain)


@contextmanager
def _new_manifest(manifest: Path) -> Iterator[None]:
    """Hold the lock of ``manifest``, refusing one that exists: an import adds a manifest, and never
    replaces one (which training runs or evaluations may have been made from)."""
    check_writable_output(manifest)
    with output_lock(manifest):
        if manifest.exists():
            raise OutputError(f"{manifest}: already exists; remove it to import again, or choose another "
                              f"--out or --name")
        yield
