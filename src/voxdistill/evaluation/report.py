"""``voxdistill report``: one self-contained HTML page from distillation runs and evaluations.

Inputs are run folders (``log.jsonl``, optionally ``config.yaml``), ``metrics.json`` files written
by ``voxdistill evaluate`` (with the transcripts file they name), ``shapes.json`` files written
by ``benchmarks/student_shapes.py``, or folders holding any of them.
The page references nothing outside itself: the CSS is inline and the plots are inline SVG, so it
can be mailed or attached to a CI run as one file.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from voxdistill import __version__
from voxdistill.evaluation import plots
from voxdistill.evaluation.report_inputs import (
    Evaluation, ReportInputs, Run, ShapeSweep, collect, config_summary, format_percent, format_ratio,
    fastest_threads, model_runtime, reference_label, same_threads_speedups, set_stats, speedup,
)
from voxdistill.files import check_not_an_input, check_writable_output, write_text_atomic
from voxdistill.scoring.metrics import AlignedPair, align, edit_counts
from voxdistill.scoring.normalize import normalize_english

MAX_EXAMPLES = 12  # transcripts shown per evaluation
LOSS_TERMS = ("total", "ce", "kd")

# --- marked transcripts for the examples -----------------------------------------------------------

def _marked(ops: list[AlignedPair]) -> str:
    """A hypothesis as HTML, its errors against the reference marked."""
    e = html.escape
    words = {
        "ok": lambda ref, hyp: e(hyp),
        "sub": lambda ref, hyp: f'<span class="sub"><del>{e(ref)}</del> <ins>{e(hyp)}</ins></span>',
        "del": lambda ref, hyp: f"<del>{e(ref)}</del>",
        "ins": lambda ref, hyp: f"<ins>{e(hyp)}</ins>",
    }
    return " ".join(words[op](ref, hyp) for op, ref, hyp in ops)


@dataclass(frozen=True)
class Example:
    """An utterance shown in the report, its texts split into normalised words."""

    row: dict  # the transcripts.jsonl record
    reference: list[str]  # the reference transcript
    hypotheses: dict[str, list[str]]  # model label -> normalised words

    def wer(self, label: str) -> float:
        return edit_counts(self.reference, self.hypotheses[label]).errors / max(len(self.reference), 1)


def pick_examples(transcripts: list[dict], reference_model: str, students: Sequence[str],
                  limit: int = MAX_EXAMPLES) -> list[Example]:
    """Utterances on which the reference model and a student disagree (after normalisation), taken
    in turn from each (set, domain) so that the examples spread over the test conditions; within
    one, the largest WER gap first."""
    groups: dict[tuple[str, str], list[Example]] = {}
    for row in transcripts:
        hypotheses = row.get("hypotheses", {})
        if reference_model not in hypotheses:
            continue
        words = {label: normalize_english(hypotheses[label]).split()
                 for label in (reference_model, *students) if label in hypotheses}
        if any(words[label] != words[reference_model] for label in words):
            example = Example(row, normalize_english(row.get("reference", "")).split(), words)
            groups.setdefault((row.get("set", ""), row.get("domain", "")), []).append(example)
    for examples in groups.values():
        examples.sort(key=lambda x: -max(abs(x.wer(label) - x.wer(reference_model)) for label in x.hypotheses))
    picked: list[Example] = []
    for turn in range(limit):
        picked += [examples[turn] for examples in groups.values() if turn < len(examples)]
    return picked[:limit]


# --- the page -------------------------------------------------------------------------------------

def build_report(paths: Sequence[Path], out: Path, title: str = "voxdistill report") -> Path:
    """Write the report of ``paths`` (see ``collect``) to ``out`` as one HTML file; returns ``out``."""
    check_writable_output(out)
    check_not_an_input(out, paths)
    return write_text_atomic(Path(out), render_report(collect(paths), title))


def render_report(inputs: ReportInputs, title: str, generated: datetime | None = None) -> str:
    generated = generated or datetime.now(timezone.utc)
    evaluations = _runtimes_section(inputs.evaluations) + "".join(
        _evaluation_section(evaluation, _suffix(i)) for i, evaluation in enumerate(inputs.evaluations))
    sweeps = "".join(_shapes_section(sweep, _suffix(i)) for i, sweep in enumerate(inputs.shape_sweeps))
    training = _training_section(inputs.runs)
    nav = [f'<a href="#evaluation{_suffix(i)}">Evaluation{_suffix(i).replace("-", " ")}</a>'
           for i in range(len(inputs.evaluations))]
    nav += [f'<a href="#shapes{_suffix(i)}">Student shapes{_suffix(i).replace("-", " ")}</a>'
            for i in range(len(inputs.shape_sweeps))] + ['<a href="#training">Training</a>']
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
        f"<header>\n<h1>{html.escape(title)}</h1>\n"
        f'<p class="meta">Generated {generated.strftime("%Y-%m-%d %H:%M:%S %Z")} by voxdistill {__version__}'
        f' from {", ".join(f"<code>{html.escape(str(p))}</code>" for p in inputs.paths)}</p>\n'
        f"{_inputs_list(inputs)}<nav>{' · '.join(nav)}</nav>\n</header>\n"
        f"{evaluations or _absent('evaluation', 'Evaluation', _NO_EVALUATION)}"
        f"{sweeps}{training}</main>\n</body>\n</html>\n"
    )


_NO_EVALUATION = ("No evaluation file (metrics.json) among the inputs: run `voxdistill evaluate` and add "
                  "its metrics.json to see WER, speed and size.")


def _suffix(index: int) -> str:
    """Ids of the first evaluation's parts are plain; later ones are numbered, as ids must be unique."""
    return "" if index == 0 else f"-{index + 1}"


def _absent(section_id: str, heading: str, message: str) -> str:
    return (f'<section id="{section_id}"><h2>{heading}</h2>'
            f'<p class="absent">{html.escape(message)}</p></section>\n')


def _inputs_list(inputs: ReportInputs) -> str:
    items = [f'<li><span class="kind">run</span> <b>{html.escape(run.label)}</b> '
             f"<code>{html.escape(str(run.folder))}</code> · {len(run.log)} logged steps</li>"
             for run in inputs.runs]
    items += [f'<li><span class="kind">evaluation</span> <code>{html.escape(str(e.path))}</code> · '
              f'{html.escape(", ".join(m["model"] for m in e.metrics["models"]))} · '
              f"{len(e.transcripts)} transcripts</li>" for e in inputs.evaluations]
    items += [f'<li><span class="kind">shapes</span> <code>{html.escape(str(s.path))}</code> · '
              f'{len(s.table["rows"])} models</li>' for s in inputs.shape_sweeps]
    return f'<ul class="inputs">{"".join(items)}</ul>\n'


def _figure(plot_id: str, figure, caption: str) -> str:
    return (f'<figure class="plot" id="{plot_id}">{plots.to_svg(figure, plot_id)}'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>\n")


def _table(css_class: str, head: Sequence[str], rows: Sequence[str], foot: Sequence[str] = ()) -> str:
    """A table from header cells (HTML) and finished ``<tr>`` rows."""
    header = "".join(f'<th scope="col">{cell}</th>' for cell in head)
    footer = f"<tfoot>{''.join(foot)}</tfoot>" if foot else ""
    return (f'<table class="{css_class}"><thead><tr>{header}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody>{footer}</table>\n")


def _number(value, fmt: str, unit: str = "") -> str:
    return "–" if value is None else f"{value:{fmt}}{unit}"


# --- evaluation -----------------------------------------------------------------------------------

def _table_rows(models: Sequence[Mapping]) -> list[tuple[str, str | None]]:
    """(set, None) for every test set, each followed by (set, domain) for its domains when it has
    more than one (a single domain would repeat its set's row)."""
    rows: list[tuple[str, str | None]] = []
    for set_name in dict.fromkeys(name for model in models for name in model["sets"]):
        rows.append((set_name, None))
        domains = dict.fromkeys(d for model in models for d in set_stats(model, set_name).get("domains", {}))
        if len(domains) > 1:
            rows += [(set_name, domain) for domain in domains]
    return rows


def _model_heading(model: Mapping, reference: str) -> str:
    role = model.get("role") or ("reference" if model["model"] == reference else "")
    return f"{html.escape(model['model'])}<small>{html.escape(role)}</small>"


def _error_row(label: str, css_class: str, stats: Sequence[Mapping], models: Sequence[Mapping],
               key: str, reference: str) -> str:
    values = [s.get(key) for s in stats]
    teacher = next((v for v, m in zip(values, models) if m["model"] == reference), None)
    best = min((v for v, m in zip(values, models) if m["model"] != reference and v is not None), default=None)

    def classes(value, model) -> str:
        """A student's cell is coloured by its own comparison with the reference model in this row
        (better or worse), and its best value is bold."""
        if model["model"] == reference or value is None:
            return "num"
        against = "" if teacher is None or value == teacher else (" better" if value < teacher else " worse")
        return "num" + against + (" best" if value == best else "")

    cells = "".join(f'<td class="{classes(v, m)}">{format_percent(v)}</td>' for v, m in zip(values, models))
    n = next((s["n"] for s in stats if "n" in s), None)
    return f'<tr class="{css_class}"><th scope="row">{html.escape(label)}</th><td class="num">{_number(n, "d")}</td>{cells}</tr>'


def _error_table(metrics: Mapping, key: str, css_class: str, domains: bool = True) -> str:
    """Rows: test sets, each followed by its domains (unless ``domains`` is false); a column per
    model; each student's value coloured by whether it beats the reference model's in that row, the
    best student's in bold."""
    models, reference = metrics["models"], reference_label(metrics)
    rows = [_error_row(domain or set_name, "domain" if domain else "set",
                       [set_stats(m, set_name, domain) for m in models], models, key, reference)
            for set_name, domain in _table_rows(models) if domains or domain is None]
    overall = [m.get("overall", {}) for m in models]
    foot = [_error_row("all sets", "overall", overall, models, key, reference)] if any(key in o for o in overall) else []
    return _table(css_class, ["Test set", "n", *(_model_heading(m, reference) for m in models)], rows, foot)


def _speed_table(metrics: Mapping) -> str:
    reference = reference_label(metrics)
    rows = []
    for model in metrics["models"]:
        overall = model.get("overall", {})
        disk = model.get("disk_bytes")
        parameters = model.get("parameters")
        cells = [
            _number(None if parameters is None else parameters / 1e6, ".1f", " M"),
            _number(None if disk is None else disk / 1e6, ".1f", " MB"),
            _number(overall.get("latency_ms_p50"), ".0f", " ms") + (f" <small>{fastest_threads(model)}</small>"
                                                                     if fastest_threads(model) else ""),
            _number(overall.get("latency_ms_p95"), ".0f", " ms"),
            _number(overall.get("rtf"), ".3f"),
            _number(overall.get("throughput_utt_per_s"), ".2f", " utt/s"),
        ]
        rows.append(f'<tr><th scope="row">{_model_heading(model, reference)}</th>'
                    + "".join(f'<td class="num">{cell}</td>' for cell in cells) + "</tr>")
    head = ["Model", "Parameters", "Disk", "Latency p50", "Latency p95", "RTF", "Throughput"]
    return _table("speed-table", head, rows)


def _ratio_table(metrics: Mapping) -> str:
    ratios = metrics.get("ratios") or {}
    if not ratios:
        return '<p class="absent">This evaluation has no ratios (it holds no student).</p>\n'
    rows = []
    for label, r in ratios.items():
        cells = [format_ratio(r.get("wer")), format_ratio(r.get("latency_p50")), format_ratio(speedup(r)),
                 same_threads_speedups(r) or "–",
                 format_ratio(r.get("throughput")), format_ratio(r.get("parameters")), format_ratio(r.get("disk_bytes"))]
        rows.append(f'<tr><th scope="row">{html.escape(label)}</th>'
                    + "".join(f'<td class="num">{cell}</td>' for cell in cells) + "</tr>")
    head = ["Student", "WER", "Latency p50", "× faster (batch 1)", "× faster, same threads", "Throughput", "Parameters",
            "Disk"]
    return _table("ratio-table", head, rows)


def _runtimes_section(evaluations: Sequence[Evaluation]) -> str:
    """When the same models were evaluated in more than one runtime: each model's WER (all sets),
    batch-1 latency and speed-up over the reference, one column group per evaluation."""
    runtimes = [{model_runtime(e.metrics, m) for m in e.metrics["models"]} for e in evaluations]
    if len(evaluations) < 2 or len({frozenset(r) for r in runtimes}) < 2:
        return ""
    labels = list(dict.fromkeys(m["model"] for e in evaluations for m in e.metrics["models"]))
    head = ["Model"]
    for e in evaluations:
        head += ["WER, all sets", "Latency p50", "× faster"]
    rows = []
    for label in labels:
        cells = []
        for e in evaluations:
            model = next((m for m in e.metrics["models"] if m["model"] == label), None)
            if model is None:
                cells += ["–", "–", "–"]
                continue
            overall = model.get("overall", {})
            ratio = (e.metrics.get("ratios") or {}).get(label)
            cells += [format_percent(overall.get("wer")) + f" <small>{html.escape(model_runtime(e.metrics, model))}</small>",
                      _number(overall.get("latency_ms_p50"), ".0f", " ms"),
                      format_ratio(speedup(ratio)) if ratio else "reference"]
        rows.append(f'<tr><th scope="row">{html.escape(label)}</th>'
                    + "".join(f'<td class="num">{cell}</td>' for cell in cells) + "</tr>")
    groups = " · ".join(f"{i + 1}: <code>{html.escape(str(e.path))}</code>" for i, e in enumerate(evaluations))
    return (f'<section id="runtimes">\n<h2>Runtimes side by side</h2>\n<p class="note">The same models in each '
            f"evaluation's runtime (column groups in order: {groups}); speed-ups are over that evaluation's "
            f"reference, measured in its own process.</p>\n{_table('runtimes-table', head, rows)}</section>\n")


def _settings(metrics: Mapping) -> str:
    parts = []
    for name in ("decoding", "speed"):
        if metrics.get(name):
            values = ", ".join(f"{key}={value}" for key, value in metrics[name].items())
            parts.append(f"<b>{name}</b> {html.escape(values)}")
    return f'<p class="settings">{"<br>".join(parts)}</p>\n' if parts else ""


def _evaluation_plots(metrics: Mapping, suffix: str) -> str:
    models, reference = metrics["models"], reference_label(metrics)
    labels = [m["model"] for m in models]
    rows = _table_rows(models)
    groups = [set_name if domain is None else f"{set_name} / {domain}" for set_name, domain in rows]
    wer = {m["model"]: [set_stats(m, s, d).get("wer") for s, d in rows] for m in models}
    out = _figure(f"wer-bars{suffix}", plots.wer_bars(groups, wer, reference),
                  f"WER per test set and domain, a bar per model (grey: the reference model, {reference}).")
    overall = [m.get("overall", {}) for m in models]
    speed = {"latency p50 (ms)": [o.get("latency_ms_p50") for o in overall],
             "latency p95 (ms)": [o.get("latency_ms_p95") for o in overall],
             "throughput (utt/s)": [o.get("throughput_utt_per_s") for o in overall]}
    size = {"parameters (M)": [m["parameters"] / 1e6 if m.get("parameters") else None for m in models],
            "disk (MB)": [m["disk_bytes"] / 1e6 if m.get("disk_bytes") else None for m in models]}
    for plot_id, panels, caption in (
        ("speed-bars", speed, "Speed over all sets: latency at batch 1 (lower is better) and throughput at batch N (higher is better)."),
        ("size-bars", size, "Size: parameters and bytes on disk."),
    ):
        measured = {title: values for title, values in panels.items() if any(v is not None for v in values)}
        if measured:
            out += _figure(plot_id + suffix, plots.model_bars(labels, measured, reference), caption)
    return out


def _examples(evaluation: Evaluation) -> str:
    if not evaluation.transcripts:
        return ('<p class="absent">No transcripts: the evaluation names no transcripts file, or the one beside '
                "it is missing or was since written by another evaluation.</p>\n")
    reference = reference_label(evaluation.metrics)
    students = [m["model"] for m in evaluation.metrics["models"] if m["model"] != reference]
    examples = pick_examples(evaluation.transcripts, reference, students)
    if not examples:
        return '<p class="absent">The reference and every student agree on every utterance (after normalisation).</p>\n'
    cards = []
    for example in examples:
        row = example.row
        head = " · ".join(html.escape(str(part)) for part in
                          (row.get("set"), row.get("domain"), row.get("id")) if part)
        duration = f" · {row['duration']:.1f} s" if isinstance(row.get("duration"), (int, float)) else ""
        lines = [f'<tr class="reference"><th scope="row">reference</th><td></td>'
                 f'<td>{html.escape(" ".join(example.reference))}</td></tr>']
        lines += [f'<tr><th scope="row">{html.escape(label)}</th><td class="num">{format_percent(example.wer(label))}</td>'
                  f"<td>{_marked(align(example.reference, words))}</td></tr>"
                  for label, words in example.hypotheses.items()]
        cards.append(f'<div class="example"><p class="example-head">{head}{duration}</p>'
                     f'<table class="example-table"><tbody>{"".join(lines)}</tbody></table></div>\n')
    legend = (f'<p class="legend">Utterances where the reference model <b>{html.escape(reference)}</b> and a '
              "student transcribe differently, text as scored (normalised), WER per utterance. "
              "<del>struck</del>: a reference word missed; <ins>marked</ins>: a word added; both together: "
              "a substitution.</p>\n")
    return legend + "".join(cards)


def _drift_section(metrics: Mapping) -> str:
    """Each student's transcripts scored against the reference model's: how far it has drifted
    from its teacher, on every set, with or without references (empty when no model has it)."""
    if not any("drift_wer" in m.get("overall", {}) for m in metrics["models"]):
        return ""
    return (f"<h3>Drift from {html.escape(reference_label(metrics))}</h3>\n"
            f'<p class="note">WER of each student\'s transcripts scored against '
            f"{html.escape(reference_label(metrics))}'s: what it forgot or changed, outside its training "
            f"domains too.</p>\n{_error_table(metrics, 'drift_wer', 'drift-table', domains=False)}")


def _evaluation_section(evaluation: Evaluation, suffix: str) -> str:
    metrics = evaluation.metrics
    return (
        f'<section class="evaluation" id="evaluation{suffix}">\n'
        f"<h2>Evaluation <code>{html.escape(str(evaluation.path))}</code></h2>\n{_settings(metrics)}"
        f"<h3>Word error rate</h3>\n{_error_table(metrics, 'wer', 'wer-table')}"
        f"<h3>Character error rate</h3>\n{_error_table(metrics, 'cer', 'cer-table')}"
        f"{_drift_section(metrics)}"
        f"<h3>Speed and size</h3>\n{_speed_table(metrics)}"
        f'<p class="note">Ratios are student / {html.escape(reference_label(metrics))} (the reference model), '
        f"measured in one process.</p>\n{_ratio_table(metrics)}"
        f'<div class="plots">{_evaluation_plots(metrics, suffix)}</div>\n'
        f'<h3 id="examples{suffix}">Examples</h3>\n{_examples(evaluation)}</section>\n'
    )


# --- student shapes -------------------------------------------------------------------------------

def _shapes_section(sweep: ShapeSweep, suffix: str) -> str:
    table = sweep.table
    wer_set = table["pareto_set"]
    rows = [row for row in table["rows"]
            if row["wer"].get(wer_set) is not None and row["latency_ms_p50"] is not None]
    teacher = next((row["shape"] for row in rows if row["role"] == "teacher"), None)
    figure = plots.wer_latency({row["shape"]: (row["latency_ms_p50"], row["wer"][wer_set]) for row in rows},
                               [row["shape"] for row in rows if row["pareto"]], teacher, f"WER, {wer_set}")
    caption = (f"WER on {wer_set} against latency p50 at batch 1, a point per model (grey square: the teacher); "
               "filled and joined: the Pareto front, the models no other model beats on one measure without "
               "losing on the other.")
    return (f'<section class="shapes" id="shapes{suffix}">\n'
            f"<h2>Student shapes <code>{html.escape(str(sweep.path))}</code></h2>\n"
            f'<div class="plots">{_figure(f"wer-latency{suffix}", figure, caption)}</div>\n</section>\n')


# --- training -------------------------------------------------------------------------------------

def _series(log: Sequence[Mapping], key: str) -> tuple[list[int], list[float]]:
    """(steps, values) of the records that logged ``key``."""
    pairs = [(record["step"], record[key]) for record in log if isinstance(record.get(key), (int, float))]
    return [step for step, _ in pairs], [value for _, value in pairs]


def _run_row(run: Run) -> str:
    steps = [record for record in run.log if "total" in record]
    last = steps[-1] if steps else {}
    dev_steps, dev_wers = _series(run.log, "dev_wer")
    dev = "–"
    if dev_wers:
        best = min(range(len(dev_wers)), key=dev_wers.__getitem__)
        dev = (f"{format_percent(dev_wers[0])} → {format_percent(dev_wers[best])} (step {dev_steps[best]})"
               f" → {format_percent(dev_wers[-1])}")
    phase_two = next((r["step"] for r in run.log if r.get("phase") == 2), None)
    teachers = ", ".join(dict.fromkeys(str(r["active_teacher"]) for r in run.log if "active_teacher" in r))
    cells = [_number(last.get("step"), "d"), *(_number(last.get(term), ".3f") for term in LOSS_TERMS),
             html.escape(dev), _number(phase_two, "d"), html.escape(teachers or "–")]
    return (f'<tr><th scope="row">{html.escape(run.label)}</th>'
            + "".join(f'<td class="num">{cell}</td>' for cell in cells) + "</tr>")


def _config_table(runs: Sequence[Run]) -> str:
    summaries = [dict(config_summary(run.config)) for run in runs]
    names = list(dict.fromkeys(name for summary in summaries for name in summary))
    if not names:
        return '<p class="absent">No run has a config.yaml.</p>\n'
    rows = [f'<tr><th scope="row">{html.escape(name)}</th>'
            + "".join(f"<td>{html.escape(summary.get(name, '–'))}</td>" for summary in summaries) + "</tr>"
            for name in names]
    return _table("config-table", ["Setting", *(html.escape(run.label) for run in runs)], rows)


def _training_plots(runs: Sequence[Run]) -> str:
    out = ""
    losses = {run.label: {term: _series(run.log, term) for term in LOSS_TERMS if _series(run.log, term)[0]}
              for run in runs}
    losses = {label: terms for label, terms in losses.items() if terms}
    if losses:
        out += _figure("loss-curves", plots.loss_curves(losses, LOSS_TERMS),
                       "Training losses per optimizer step: raw (faint) and moving average.")
    schedules = {}
    for run in runs:
        records = [r for r in run.log if "kd_weight" in r]
        if records:
            schedules[run.label] = ([r["step"] for r in records], [r["kd_weight"] for r in records],
                                    [r.get("phase", 1) for r in records])
    if schedules:
        out += _figure("curriculum", plots.curriculum(schedules),
                       "The teacher's weight kd_weight per step; shaded: phase 2 (self-distillation).")
    dev = {run.label: _series(run.log, "dev_wer") for run in runs if _series(run.log, "dev_wer")[0]}
    if dev:
        out += _figure("dev-wer", plots.dev_wer_curves(dev), "Dev-set WER during training.")
    return out


def _training_section(runs: Sequence[Run]) -> str:
    if not runs:
        return _absent("training", "Training", "No distillation run folder (with log.jsonl) among the inputs: "
                                   "add run folders to see loss curves, the kd_weight curriculum and dev WER.")
    head = ["Run", "Last step", *(f"{term} loss" for term in LOSS_TERMS), "Dev WER: first → best → last",
            "Phase 2 from", "Teachers"]
    return (
        '<section id="training">\n<h2>Training</h2>\n'
        f"{_table('run-table', head, [_run_row(run) for run in runs])}"
        f"<h3>Settings</h3>\n{_config_table(runs)}"
        f'<div class="plots">{_training_plots(runs)}</div>\n</section>\n'
    )


_CSS = """
:root { --ink: #1f2937; --muted: #6b7280; --line: #e5e7eb; --accent: #2563eb; --better: #dcfce7; --worse: #fee2e2; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #f8fafc;
       font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 64px; }
header { border-bottom: 1px solid var(--line); margin-bottom: 8px; }
h1 { font-size: 28px; margin: 8px 0 4px; }
h2 { font-size: 21px; margin: 36px 0 8px; padding-top: 8px; border-top: 3px solid var(--ink); }
h2 code { font-size: 14px; font-weight: normal; color: var(--muted); }
h3 { font-size: 16px; margin: 24px 0 8px; }
code { font: 13px ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; word-break: break-all; }
.meta, .note, .legend, .settings { color: var(--muted); font-size: 13px; }
.inputs { list-style: none; padding: 0; margin: 8px 0; font-size: 14px; }
.inputs li { margin: 2px 0; }
.kind { display: inline-block; min-width: 84px; font-size: 11px; text-transform: uppercase;
        letter-spacing: .05em; color: var(--muted); }
nav { margin: 8px 0 12px; font-size: 14px; }
nav a { color: var(--accent); text-decoration: none; }
.absent { background: #fff7ed; border: 1px solid #fed7aa; padding: 10px 14px; border-radius: 6px; }
table { border-collapse: collapse; margin: 6px 0 14px; background: #fff; font-size: 14px;
        box-shadow: 0 0 0 1px var(--line); border-radius: 6px; }
th, td { padding: 5px 12px; text-align: left; vertical-align: top; }
thead th { border-bottom: 2px solid var(--line); font-weight: 600; vertical-align: bottom; text-align: right; }
thead th:first-child, .config-table thead th { text-align: left; }
thead th small { display: block; font-weight: normal; color: var(--muted); font-size: 11px; }
tbody tr:nth-child(even) { background: #f9fafb; }
tbody th, tfoot th { font-weight: 600; white-space: nowrap; }
tbody th small { margin-left: 6px; font-weight: normal; color: var(--muted); font-size: 11px; }
tr.domain th { font-weight: normal; padding-left: 30px; color: #374151; }
tr.overall th, tr.overall td { border-top: 2px solid var(--line); font-weight: 600; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.better { background: var(--better); }
td.worse { background: var(--worse); }
td.best { font-weight: 700; }
.config-table td { font-size: 13px; max-width: 340px; overflow-wrap: anywhere; }
.plots { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; margin-top: 16px; }
figure.plot { flex: 0 1 auto; max-width: 100%; margin: 0; background: #fff; border: 1px solid var(--line);
              border-radius: 6px; padding: 12px; }
/* Natural size (every figure is drawn at the same font size), shrunk only on narrow screens. */
figure.plot svg { display: block; max-width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 6px; }
.example { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; margin: 10px 0; }
.example-head { margin: 0 0 4px; font-size: 13px; color: var(--muted); }
.example-table { box-shadow: none; margin: 0; width: 100%; }
.example-table th { width: 150px; color: var(--muted); font-weight: normal; }
.example-table td.num { width: 70px; }
.example-table tr.reference td { color: #111827; }
del { color: #b91c1c; background: #fee2e2; text-decoration: line-through; padding: 0 2px; border-radius: 3px; }
ins { color: #1d4ed8; background: #dbeafe; text-decoration: none; padding: 0 2px; border-radius: 3px; }
.sub { white-space: nowrap; }
"""
