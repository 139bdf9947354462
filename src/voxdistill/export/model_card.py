"""The model card of a student: a Hugging Face ``README.md`` in the student's folder saying what the
model is, how it was made (``student.json`` and the run's ``config.yaml``), how it scores against
its teacher (a ``metrics.json`` of ``voxdistill evaluate``), how to use it and where it falls short.
What is particular to a student family (what kind of model it is, how to run it) its family says
(`families`); an exported folder's card (`write_export_card`) likewise."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from voxdistill.errors import VoxdistillError
from voxdistill.evaluation.report_inputs import (
    config_summary, fastest_threads, format_ms, format_percent, format_ratio, model_runtime, reference_label,
    same_threads_speedups, set_stats, speedup,
)
from voxdistill.families import FAMILIES, family_of
from voxdistill.files import check_writable_output, write_text_atomic
from voxdistill.models.student import STUDENT_FILE, after_silence, read_student_record

CARD_FILE = "README.md"  # where the Hugging Face hub looks for a model card
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")  # owner/name


class ModelCardError(VoxdistillError):
    """The card cannot be written: the folder is not a model, or the metrics do not hold the student."""


def write_model_card(model_dir: Path, metrics: dict, label: str, other_runtimes: Sequence[Mapping] = ()) -> Path:
    """Write ``model_dir/README.md`` for the student called ``label`` in ``metrics`` (the contents
    of a ``metrics.json`` that also holds its reference model, the teacher). ``other_runtimes``:
    evaluations of the same models in other runtimes (e.g. CTranslate2 int8), summarised side by side
    with ``metrics``. Returns the card's path."""
    model_dir = Path(model_dir)
    family = family_of(model_dir)
    if not family.recognises(model_dir):
        raise ModelCardError(f"{model_dir}: not {' nor '.join(f.folder_description for f in FAMILIES)}; "
                             f"give the student's folder, e.g. RUN/model")
    models = {model["model"]: model for model in metrics.get("models", [])}
    if label not in models:
        raise ModelCardError(f"the metrics hold no model {label!r}; they hold: {', '.join(models) or 'none'}")
    reference = models[reference_label(metrics)]
    provenance = read_student_record(model_dir) or {}
    teacher = provenance.get("teacher", {}).get("source") or reference.get("source") or reference["model"]
    sections = [
        _front_matter(teacher),
        _about(label, teacher, models[label], reference, provenance, family.card_kind(provenance)),
        _how_it_was_made(model_dir, provenance),
        _evaluation(metrics, models[label], reference),
        _by_runtime([metrics, *other_runtimes], label) if other_runtimes else "",
        family.card_usage(model_dir),
        _limitations(models[label]),
    ]
    return write_text_atomic(model_dir / CARD_FILE, "\n".join(sections))


def write_student_cards(metrics: dict) -> list[Path]:
    """`write_model_card` into the folder of every student ``metrics`` evaluated (``voxdistill
    evaluate --card``). Returns the cards' paths."""
    return [write_model_card(Path(record["source"]), metrics, record["model"])
            for record in metrics["models"] if record["role"] == "student"]


def check_student_cards(sources: Sequence[str]) -> None:
    """Refuse, before an evaluation starts, a student folder among ``sources`` whose card
    (`write_student_cards`) cannot be written there (`files.OutputError`)."""
    for source in sources:
        if (Path(source) / STUDENT_FILE).is_file():
            check_writable_output(Path(source) / CARD_FILE)


def is_hub_id(source: str) -> bool:
    """Whether ``source`` names a model on the Hugging Face hub (not a bundled teacher or a folder)."""
    return bool(_HUB_ID.match(source)) and not Path(source).exists()


def _front_matter(teacher: str) -> str:
    meta = {"library_name": "transformers", "pipeline_tag": "automatic-speech-recognition", "language": "en",
            "tags": ["whisper", "distillation", "voxdistill"]}
    if is_hub_id(teacher):
        meta["base_model"] = teacher  # the hub links a model to its base only by hub id
    return f"---\n{yaml.safe_dump(meta, sort_keys=False)}---\n"


# What can start Markdown, or GitHub's and the hub's extensions (tables, strikethrough, maths), in the
# middle of a line; CommonMark lets a backslash make any of them literal. An underscore between
# letters or digits starts no emphasis, so file names keep theirs bare.
_MARKDOWN_SPECIAL = re.compile(r"[\\`*\[\]<>|&$~]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")


def markdown_text(value) -> str:
    """``value``, text from users (a label, a set name, a path), as literal Markdown text: shown as
    written, never as a link, an HTML tag or a table column, in a heading, a paragraph or a table cell."""
    return _MARKDOWN_SPECIAL.sub(lambda special: "\\" + special.group(0), " ".join(str(value).splitlines()))


def _about(label: str, teacher: str, student: Mapping, reference: Mapping, provenance: Mapping, kind: str) -> str:
    shape = provenance.get("student_shape", {})
    size = ""
    if student.get("parameters") and reference.get("parameters"):
        size = (f" It has {student['parameters'] / 1e6:.1f} M parameters, "
                f"{student['parameters'] / reference['parameters']:.0%} of the teacher's.")
    layers = ""
    if shape and "decoder_layers" not in shape:  # a student without a decoder (a CTC student)
        layers = f" It keeps {shape['encoder_layers']} encoder layers of width {shape['d_model']}."
    elif shape:
        layers = (f" It keeps {shape['encoder_layers']} encoder and {shape['decoder_layers']} decoder layers "
                  f"of width {shape['d_model']}.")
    window = provenance.get("window_seconds") or {}
    if provenance.get("pad_step_seconds"):
        layers += (f" It encodes each clip at the clip's own length, zero-padded to the next "
                   f"{provenance['pad_step_seconds']:g} s{after_silence(provenance)} rather than to a fixed "
                   f"window (the teacher pads every "
                   f"clip to {window.get('teacher', 30)} s), and was trained that way; audio longer than "
                   f"{window.get('student', 30)} s is cut into windows.")
    elif window and window.get("student") != window.get("teacher"):
        layers += (f" It reads audio in {window['student']}-second windows (the teacher: {window['teacher']} s), "
                   f"so shorter clips cost its encoder less; longer audio is cut into windows.")
    made = "distilled" if provenance.get("distilled") else "built, not yet trained,"
    label, teacher = markdown_text(label), markdown_text(teacher)
    return (f"# {label}\n\n{label} is an English speech-recognition model: a {kind} {made} "
            f"from the teacher {teacher} with voxdistill, to transcribe faster on a CPU.{layers}{size}\n")


def _how_it_was_made(model_dir: Path, provenance: Mapping) -> str:
    if not provenance:
        return (f"## How it was made\n\nThis folder has no `{STUDENT_FILE}`, so how the student was "
                f"initialised and trained is not recorded.\n")
    teacher, student = provenance.get("teacher_shape", {}), provenance.get("student_shape", {})
    kept = {"encoder_layers": provenance.get("encoder_layers"), "decoder_layers": provenance.get("decoder_layers")}
    rows = [f"| {name.replace('_', ' ')} | {teacher.get(name, '–')} | {student.get(name, '–')} | "
            f"{', '.join(map(str, kept[name])) if kept.get(name) else ''} |"
            for name in ("encoder_layers", "decoder_layers", "d_model", "encoder_ffn_dim", "decoder_ffn_dim")]
    source = provenance.get("teacher", {})
    lines = [
        "## How it was made\n",
        f"**Initialisation.** Every weight comes from the teacher {markdown_text(source.get('source', '?'))} (fingerprint "
        f"`{source.get('fingerprint', '?')}`), none is random: student layer *i* is a copy of the teacher "
        f"layer listed *i*-th below.\n",
        "| | teacher | student | teacher layers kept |", "|---|---|---|---|", *rows, "",
        *(f"- Width: {line}" for line in provenance.get("width_initialisation", [])),
    ]
    distilled = provenance.get("distilled")
    if not distilled:
        lines.append("\n**Distillation.** None recorded: these are the initial weights, not yet trained.\n")
        return "\n".join(lines)
    lines.append(f"\n**Distillation.** {distilled.get('steps', '?')} optimizer steps in the run "
                 f"{markdown_text(distilled.get('run', '?'))}, teacher mode `{distilled.get('teacher_mode', '?')}` "
                 f"(teacher fingerprint `{distilled.get('teacher_fingerprint', '?')}`).\n")
    config_path = _run_config(model_dir, distilled)
    if config_path is None:
        lines.append("The run's `config.yaml` was not found, so its settings are not listed here.\n")
    else:
        config = yaml.safe_load(config_path.read_text()) or {}
        lines += [f"- **{name}**: {markdown_text(value)}" for name, value in config_summary(config)]
        lines.append("")
    return "\n".join(lines)


def _run_config(model_dir: Path, distilled: Mapping) -> Path | None:
    """The run's config.yaml. The run folder is recorded as the trainer was given it, which may be
    relative to another working directory; the trainer exports the student into RUN/model, so the
    model's parent is tried too when it carries the run's name."""
    run = Path(distilled.get("run", ""))
    candidates = [run / "config.yaml"]
    if run.name and model_dir.resolve().parent.name == run.name:
        candidates.append(model_dir.resolve().parent / "config.yaml")
    return next((path for path in candidates if path.is_file()), None)


def _evaluation(metrics: Mapping, student: Mapping, reference: Mapping) -> str:
    s, t = student["model"], reference["model"]
    cs, ct = markdown_text(s), markdown_text(t)
    head = (f"| Test set | n | WER {cs} | WER {ct} | drift from {ct} | CER {cs} | CER {ct} | latency p50 {cs} "
            f"| latency p50 {ct} |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    rows = []
    for name in dict.fromkeys([*reference.get("sets", {}), *student.get("sets", {})]):
        rows.append(_evaluation_row(markdown_text(name), set_stats(student, name), set_stats(reference, name)))
    if student.get("overall") and reference.get("overall"):
        rows.append(_evaluation_row("**all sets**", student["overall"], reference["overall"]))
    ratios = metrics.get("ratios", {}).get(s, {})
    faster = speedup(ratios)
    ratio_rows = [("latency p50 (batch 1)", format_ratio(ratios.get("latency_p50"))
                   + (f" ({format_ratio(faster)} faster)" if faster else "")
                   + (f"; {cs} {fastest_threads(student)}, {ct} {fastest_threads(reference)}, each its fastest"
                      if fastest_threads(student) else "")),
                  *([("faster, both at the same thread count", same_threads_speedups(ratios))]
                    if same_threads_speedups(ratios) else []),
                  ("throughput (batch N)", format_ratio(ratios.get("throughput"))),
                  ("parameters", format_ratio(ratios.get("parameters"))),
                  ("size on disk", format_ratio(ratios.get("disk_bytes"))),
                  ("WER", format_ratio(ratios.get("wer")))]
    decoding = markdown_text(", ".join(f"{key}={value}" for key, value in metrics.get("decoding", {}).items()))
    student_runtime, teacher_runtime = model_runtime(metrics, student), model_runtime(metrics, reference)
    runs_in = (f"both run in {student_runtime}" if student_runtime == teacher_runtime else
               f"the student run in {student_runtime}, the teacher in {teacher_runtime}")
    return "\n".join([
        "## Evaluation\n",
        f"Measured by `voxdistill evaluate` against the teacher {ct} with the same decoding for both "
        f"({decoding or 'settings not recorded'}), {runs_in}. "
        f"WER and CER are corpus-level, after English text "
        f"normalisation; drift is the WER of the student's transcripts scored against the teacher's "
        f"(what it forgot or changed); latency is per utterance at batch 1 on a CPU.\n",
        head, *rows, "",
        "Student / teacher, measured in one process:\n",
        "| | student / teacher |", "|---|--:|", *(f"| {name} | {value} |" for name, value in ratio_rows), "",
    ])


def _by_runtime(evaluations: Sequence[Mapping], label: str) -> str:
    """One row per evaluation: the student against its teacher, each in that evaluation's runtime."""
    rows = []
    for metrics in evaluations:
        models = {model["model"]: model for model in metrics.get("models", [])}
        if label not in models:
            continue
        student, reference = models[label], models[reference_label(metrics)]
        faster = speedup(metrics.get("ratios", {}).get(label, {}))
        rows.append(f"| {model_runtime(metrics, student)} | {model_runtime(metrics, reference)} "
                    f"| {format_percent(student['overall'].get('wer'))} | {format_percent(reference['overall'].get('wer'))} "
                    f"| {format_ms(student['overall'].get('latency_ms_p50'))} | {format_ms(reference['overall'].get('latency_ms_p50'))} "
                    f"| {format_ratio(faster)} |")
    return "\n".join([
        "### By runtime\n",
        "The same student and teacher evaluated in each runtime (all sets; each row measured in one process):\n",
        "| student runs in | teacher runs in | WER student | WER teacher | latency p50 student | latency p50 teacher "
        "| faster |", "|---|---|--:|--:|--:|--:|--:|", *rows, "",
    ])


def _evaluation_row(name: str, student: Mapping, reference: Mapping) -> str:
    """A table row; ``name`` is Markdown."""
    n = student.get("n", reference.get("n", "–"))
    return (f"| {name} | {n} | {format_percent(student.get('wer'))} | {format_percent(reference.get('wer'))} "
            f"| {format_percent(student.get('drift_wer'))} | {format_percent(student.get('cer'))} | {format_percent(reference.get('cer'))} "
            f"| {format_ms(student.get('latency_ms_p50'))} | {format_ms(reference.get('latency_ms_p50'))} |")


def _limitations(student: Mapping) -> str:
    sizes = [stats["n"] for stats in student.get("sets", {}).values() if "n" in stats]
    size = ""
    if sizes:
        spread = str(sizes[0]) if min(sizes) == max(sizes) else f"{min(sizes)} to {max(sizes)}"
        size = f" ({spread} utterances per set)"
    return (
        "## Limitations\n\n"
        "- **Synthetic speech.** Trained and evaluated on text-to-speech voices with simulated noise, "
        "reverberation and telephone bands; real recordings (accents, spontaneous or far-field speech) "
        "will likely score worse than the table says.\n"
        "- **English only.** It was distilled and evaluated on English; do not expect other languages "
        "to work, whatever the teacher could do.\n"
        f"- **Small evaluation sets**{size}: differences of a few WER points between models are "
        f"within the noise of the measurement.\n"
        "- Like its Whisper teacher, it can produce fluent text that was never said, especially on "
        "silence or heavy noise.\n"
    )


def write_export_card(folder: Path, export: Mapping, usage: str, source_card: Path | None, location: str) -> Path:
    """The model card of an exported folder (``export``: its ``voxdistill-export.json`` record;
    ``usage``: its family's "How to use" section for the format, `StudentFamily.export_card_usage`;
    ``location``: where the folder will be, named in the examples): the source's card when it has
    one (``evaluate --card`` wrote it), with its usage section rewritten for the exported format;
    else a short card that says what the folder is and how to run it."""
    usage = usage.replace("THIS_FOLDER", location)
    if source_card is not None and source_card.is_file():
        text = re.sub(r"## How to use\n.*?(?=\n## |\Z)", lambda _: usage, source_card.read_text(), count=1,
                      flags=re.DOTALL)
        if export["format"] == "ct2":
            text = text.replace("library_name: transformers", "library_name: ctranslate2", 1)
        return write_text_atomic(folder / CARD_FILE, text)
    library = "ctranslate2" if export["format"] == "ct2" else "transformers"
    meta = {"library_name": library, "pipeline_tag": "automatic-speech-recognition",
            "tags": ["whisper", "voxdistill", *(["ctranslate2"] if export["format"] == "ct2" else [])]}
    what = ("a CTranslate2 folder, weights stored as " + export["quantization"] if export["format"] == "ct2"
            else "a Hugging Face Whisper folder (float32 safetensors)")
    sections = [
        f"---\n{yaml.safe_dump(meta, sort_keys=False)}---\n",
        f"# {markdown_text(Path(location).name)}\n\n"
        f"{markdown_text(export['source'])} exported by voxdistill as {what}; it reads audio in "
        f"{export['window_seconds']}-second windows"
        + (f", each clip padded only to the next {export['pad_step_seconds']:g} s{after_silence(export)}."
           if export.get("pad_step_seconds") else ".") + "\n",
        usage,
        "## Evaluation\n\nNone recorded with this export. Measure it next to its teacher in the runtime it will "
        f"run in, e.g. `voxdistill evaluate --runtime ct2 --compute-type int8 --model TEACHER --model {location} "
        "--manifest test.jsonl --out metrics.json`: a quantised model can lose accuracy that only such a "
        "measurement shows.\n",
    ]
    return write_text_atomic(folder / CARD_FILE, "\n".join(sections))
