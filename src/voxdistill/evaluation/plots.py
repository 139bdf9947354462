"""The figures of ``voxdistill report``, each drawn from plain data and rendered to inline SVG.

Figures are ``matplotlib.figure.Figure`` objects made directly, never through pyplot: no display,
no backend to choose and no global figure list that grows with every plot drawn in one process.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

Series = tuple[Sequence[float], Sequence[float]]  # (steps, values), equally long

REFERENCE_COLOUR = "#8a8f98"  # the teacher: grey, so that the students stand out
_COLOURS = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#db2777", "#65a30d")
_PANEL_WIDTH = 3.6  # inches per panel; the HTML scales every figure to the page width
_PANEL_HEIGHT = 2.8
_STYLE = {
    "font.size": 9, "axes.titlesize": 10, "axes.spines.top": False, "axes.spines.right": False,
    "axes.grid": True, "grid.color": "#e5e7eb", "grid.linewidth": 0.6, "axes.axisbelow": True,
    "legend.frameon": False, "legend.fontsize": 8,
    # Labels are users' text, drawn as written: "$" starts no formula (an unmatched one would fail).
    "text.parse_math": False,
}
# Applied to each plotting function as a whole: matplotlib reads most settings when an artist is
# made (a title, a line, a legend), not when the figure is.
_styled = matplotlib.rc_context(_STYLE)


def colours(labels: Sequence[str], reference: str | None = None) -> dict[str, str]:
    """A colour per label, in order; ``reference`` (the teacher) is grey."""
    palette = iter(_COLOURS * (len(labels) // len(_COLOURS) + 1))
    return {label: REFERENCE_COLOUR if label == reference else next(palette) for label in labels}


def to_svg(figure: Figure, plot_id: str) -> str:
    """``figure`` as an ``<svg>`` element to embed in HTML (no XML prolog or DOCTYPE).

    Every id in the SVG is prefixed with ``plot_id``: all the figures of a page share one id
    namespace, and matplotlib names its glyph definitions the same in every figure."""
    buffer = io.StringIO()
    # Glyphs as paths: the page then needs no font and looks the same in every browser. The salt
    # makes clip-path ids a function of the plot, so the same inputs give byte-identical pages.
    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": plot_id}):
        figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg"):]
    return (svg.replace('id="', f'id="{plot_id}-').replace('href="#', f'href="#{plot_id}-')
            .replace("url(#", f"url(#{plot_id}-"))


def _figure(panels: int, columns: int | None = None) -> tuple[Figure, list[Axes]]:
    columns = min(panels, columns or panels)
    rows = math.ceil(panels / columns)
    figure = Figure(figsize=(_PANEL_WIDTH * columns, _PANEL_HEIGHT * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).flatten().tolist()
    for unused in axes[panels:]:
        unused.set_visible(False)
    return figure, axes[:panels]


def _smooth(values: Sequence[float], window: int) -> list[float]:
    """Centred moving average; per-step losses are noisy enough to hide the trend."""
    half = window // 2
    averages = []
    for i in range(len(values)):
        around = values[max(0, i - half):i + half + 1]
        averages.append(sum(around) / len(around))
    return averages


@_styled
def loss_curves(runs: Mapping[str, Mapping[str, Series]], terms: Sequence[str] = ("total", "ce", "kd")) -> Figure:
    """One panel per loss term, a line per run: the raw per-step value faint, its moving average
    solid. ``runs[label][term]`` is that term's series; a run without a term is left out of its panel."""
    figure, axes = _figure(len(terms))
    palette = colours(list(runs))
    for ax, term in zip(axes, terms):
        for label, series in runs.items():
            if term not in series:
                continue
            steps, values = series[term]
            ax.plot(steps, values, color=palette[label], alpha=0.25, linewidth=0.8)
            ax.plot(steps, _smooth(values, max(1, len(values) // 15)), color=palette[label],
                    linewidth=1.6, label=label)
        ax.set_title(f"{term} loss")
        ax.set_xlabel("step")
    _legend_above(figure, axes)
    return figure


def _legend_above(figure: Figure, axes: Sequence[Axes]) -> None:
    """One legend for all panels, above them, where it covers no data."""
    entries: dict[str, object] = {}
    for ax in axes:
        handles, labels = ax.get_legend_handles_labels()
        entries |= dict(zip(labels, handles))
    figure.legend(entries.values(), entries.keys(), loc="outside upper center", ncols=min(len(entries), 6))


@_styled
def curriculum(runs: Mapping[str, tuple[Sequence[int], Sequence[float], Sequence[int]]]) -> Figure:
    """A panel per run: the teacher's weight ``kd_weight`` against the step, with the steps of
    phase 2 (self-distillation) shaded. ``runs[label]`` is (steps, kd_weight, phase)."""
    figure, axes = _figure(len(runs), columns=3)
    palette = colours(list(runs))
    for ax, (label, (steps, weights, phases)) in zip(axes, runs.items()):
        ax.plot(steps, weights, color=palette[label], linewidth=1.6, label="kd_weight")
        for start, end in _phase_two_spans(steps, phases):
            ax.axvspan(start, end, color="#f59e0b", alpha=0.18, linewidth=0, label="phase 2")
        ax.set_title(label)
        ax.set_xlabel("step")
        ax.set_ylim(0, max(weights, default=1) * 1.1 or 1)
        handles, names = ax.get_legend_handles_labels()
        unique = dict(zip(names, handles))  # one legend entry, however many phase-2 spans
        ax.legend(unique.values(), unique.keys())
    return figure


def _phase_two_spans(steps: Sequence[int], phases: Sequence[int]) -> list[tuple[int, int]]:
    """The [first, last] steps of every run of consecutive phase-2 steps."""
    spans: list[tuple[int, int]] = []
    for step, phase in zip(steps, phases):
        if phase != 2:
            continue
        if spans and spans[-1][1] == step - 1:
            spans[-1] = (spans[-1][0], step)
        else:
            spans.append((step, step))
    return spans


@_styled
def dev_wer_curves(runs: Mapping[str, Series]) -> Figure:
    """Dev-set WER (a fraction) against the step, a line per run."""
    figure, (ax,) = _figure(1)
    figure.set_size_inches(_PANEL_WIDTH * 1.6, _PANEL_HEIGHT)
    palette = colours(list(runs))
    for label, (steps, wers) in runs.items():
        ax.plot(steps, wers, marker="o", markersize=3.5, linewidth=1.6, color=palette[label], label=label)
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=0))
    ax.set_ylim(bottom=0)
    ax.set_xlabel("step")
    ax.set_ylabel("dev WER")
    ax.legend()
    return figure


@_styled
def wer_bars(groups: Sequence[str], models: Mapping[str, Sequence[float | None]],
             reference: str | None = None, ylabel: str = "WER") -> Figure:
    """Grouped bars: for each group (a test set or domain) a bar per model. ``models[label][i]``
    is that model's error rate (a fraction) on ``groups[i]``, or None when it was not measured."""
    figure, (ax,) = _figure(1)
    figure.set_size_inches(max(_PANEL_WIDTH * 1.6, 0.3 * len(groups) * (len(models) + 1)), _PANEL_HEIGHT + 0.6)
    palette = colours(list(models), reference)
    width = 0.8 / len(models)
    for k, (label, values) in enumerate(models.items()):
        positions = [i + (k - (len(models) - 1) / 2) * width for i, v in enumerate(values) if v is not None]
        ax.bar(positions, [v for v in values if v is not None], width, color=palette[label], label=label)
    ax.set_xticks(range(len(groups)), groups, rotation=25, ha="right")
    ax.grid(axis="x", visible=False)
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=0))
    ax.set_ylabel(ylabel)
    _legend_above(figure, [ax])
    return figure


@_styled
def model_bars(models: Sequence[str], panels: Mapping[str, Sequence[float | None]],
               reference: str | None = None) -> Figure:
    """A panel per measure (e.g. "latency p50 (ms)"), a labelled bar per model.
    ``panels[title][i]`` is the value of ``models[i]``, or None when it was not measured."""
    figure, axes = _figure(len(panels))
    palette = colours(models, reference)
    for ax, (title, values) in zip(axes, panels.items()):
        measured = [(m, v) for m, v in zip(models, values) if v is not None]
        bars = ax.bar([m for m, _ in measured], [v for _, v in measured],
                      color=[palette[m] for m, _ in measured], width=0.6)
        ax.bar_label(bars, fmt="{:,.3g}", fontsize=8, padding=2)
        ax.set_title(title)
        ax.tick_params(axis="x", rotation=25)
        ax.grid(axis="x", visible=False)
        ax.margins(y=0.15)
    return figure


@_styled
def wer_latency(points: Mapping[str, tuple[float, float]], front: Sequence[str], reference: str | None = None,
                wer_label: str = "WER") -> Figure:
    """Accuracy against speed: a labelled point per model at (latency p50 in ms, WER as a fraction),
    the models of the Pareto front (``front``) filled and joined from fastest to slowest, the others
    hollow; ``reference`` (the teacher) is a grey square."""
    figure, (ax,) = _figure(1)
    figure.set_size_inches(_PANEL_WIDTH * 1.6, _PANEL_HEIGHT + 0.6)
    accent = _COLOURS[0]
    on_front = sorted(points[label] for label in front)  # by latency
    ax.plot([x for x, _ in on_front], [y for _, y in on_front], color=accent, linewidth=1.2, label="Pareto front")
    for label, (latency, wer) in points.items():
        colour = REFERENCE_COLOUR if label == reference else accent
        ax.plot(latency, wer, "s" if label == reference else "o", markersize=6, color=colour,
                markerfacecolor=colour if label in front else "white", markeredgewidth=1.4)
        ax.annotate(label, (latency, wer), xytext=(5, 4), textcoords="offset points", fontsize=8, color=colour)
    ax.margins(x=0.12, y=0.12)  # room for the labels of the outermost points
    ax.set_xlim(left=0)  # from 0, so that distances along the axis read as speed-ups
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=0))
    ax.set_xlabel("latency p50, batch 1 (ms)")
    ax.set_ylabel(wer_label)
    ax.legend(loc="best")
    return figure
