"""The Pareto front of a trade-off, such as a student's WER against its latency: the options for
which no other option is at least as good on every measure and better on one."""

from __future__ import annotations

from collections.abc import Sequence

Point = Sequence[float]  # one value per measure, lower is better on each (e.g. (WER, latency ms))


def dominates(a: Point, b: Point) -> bool:
    """Whether ``a`` is at least as good as ``b`` on every measure and better on at least one."""
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def pareto_front(points: Sequence[Point | None]) -> list[bool]:
    """For each point, whether it is on the Pareto front: no other point dominates it. Equal
    points do not dominate each other, so they are on the front together or off it together.
    ``None`` (an option that was not measured) is never on the front and dominates nothing."""
    measured = [p for p in points if p is not None]
    return [p is not None and not any(dominates(q, p) for q in measured) for p in points]
