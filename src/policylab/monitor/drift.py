"""Drift alerts over time windows of graded deployment conversations.

For each window (`DriftAlerts.window`, aligned to the Unix epoch, so days start at 00:00 UTC)
with at least `min_window` conversations, the distribution of categories and the distribution of
behaviours are compared with a reference (`DriftAlerts.reference` long: the windows just before
it that raised no alert, so a lasting shift keeps alerting from the day it began) by
`policylab.stats.drift.categorical_drift` (Evidently's defaults: chi-squared for a small
reference, Jensen–Shannon distance for a large one). Each category with at least
`MIN_CHART_EVENTS` conversations in the reference also gets a p-chart point against its share
there (3σ limits), and the policy's `monitoring.rates`
alerts compare the 95% Wilson lower bound of a window's rate with their `max`.

Consecutive alerted windows make one alert; `since` is the start of its first window.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

from policylab.errors import PolicylabError
from policylab.policy.schema import DriftAlerts, Policy, RateAlert
from policylab.stats.drift import DriftResult, categorical_drift, p_chart
from policylab.stats.intervals import wilson

__all__ = ["NONE", "Alert", "DriftReport", "Window", "drift_report", "parse_duration"]

NONE = "(none)"
"""The category of conversations no policy category fits."""
_UNITS = {"h": dt.timedelta(hours=1), "d": dt.timedelta(days=1), "w": dt.timedelta(weeks=1)}
_EPOCH = pd.Timestamp("1970-01-01", tz="UTC")
MIN_CHART_EVENTS = 5
"""A category gets a p-chart only with this many conversations in the reference (n·p̄ ≥ 5)."""

AlertKind = Literal["category_drift", "behavior_drift", "control_chart", "rate"]


def parse_duration(text: str) -> dt.timedelta:
    """`12h`, `1d`, `2w` as a timedelta."""
    m = re.fullmatch(r"([1-9][0-9]*)([hdw])", text.strip())
    if not m:
        raise PolicylabError(
            f"not a duration: {text!r}", hint="use a whole number and h, d or w, e.g. 1d or 12h"
        )
    return int(m.group(1)) * _UNITS[m.group(2)]


@dataclass(frozen=True)
class Window:
    """One tested window and the drift tests it got (None: too few conversations)."""

    start: dt.datetime
    end: dt.datetime
    n: int
    reference_n: int
    categories: DriftResult | None
    behaviors: DriftResult | None


@dataclass
class Alert:
    """A run of consecutive windows in which one test fired."""

    kind: AlertKind
    subject: str
    since: dt.datetime
    until: dt.datetime
    windows: int
    detail: str
    active: bool
    examples: list[int] = field(default_factory=list)


@dataclass
class DriftReport:
    settings: DriftAlerts
    windows: list[Window]
    alerts: list[Alert]
    skipped: int

    @property
    def active(self) -> list[Alert]:
        return [a for a in self.alerts if a.active]


def _counts(series: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in series.value_counts().items()}


def _subtree(frame: pd.DataFrame, category: str, policy: Policy | None) -> pd.Series:
    cats = frame["category"]
    if policy is None:
        return cats == category
    return cats.map(lambda c: isinstance(c, str) and policy.is_under(c, category))


def _rate(frame: pd.DataFrame, alert: RateAlert, policy: Policy | None) -> tuple[int, int]:
    inside = _subtree(frame, alert.category, policy)
    if alert.metric == "share":
        return int(inside.sum()), len(frame)
    graded = frame[inside & frame["behavior"].notna()]
    if alert.metric == "violation":
        known = graded[graded["violation"].notna()]
        return int((known["violation"] == True).sum()), len(known)  # noqa: E712
    return int(graded["behavior"].isin(["refuse", "partial"]).sum()), len(graded)


def drift_report(
    frame: pd.DataFrame,
    *,
    settings: DriftAlerts | None = None,
    rates: Sequence[RateAlert] = (),
    policy: Policy | None = None,
    examples: int = 3,
) -> DriftReport:
    """Drift tests and alerts for the conversations in `frame` (columns `conversation_id`,
    `timestamp` (UTC), `category`, `behavior`, `violation`; see `store.monitor.conversations_frame`)."""
    settings = settings or DriftAlerts()
    window = pd.Timedelta(parse_duration(settings.window))
    reference = pd.Timedelta(parse_duration(settings.reference))
    if frame.empty:
        return DriftReport(settings, [], [], 0)
    frame = frame.copy()
    frame["category"] = frame["category"].where(frame["category"].notna(), NONE)
    span = max(1, -(-reference // window))  # reference length in whole windows
    index = ((frame["timestamp"] - _EPOCH) // window).astype("int64")
    first, last = int(index.min()), int(index.max())
    hits: dict[tuple[AlertKind, str], list[tuple[pd.Timestamp, str, list[int]]]] = {}
    windows: list[Window] = []
    skipped = 0
    # The reference is the last `span` windows that raised no alert: a lasting shift keeps
    # alerting (and `since` keeps its start) instead of being absorbed into the baseline.
    stable: list[int] = list(range(first, first + span))
    for w in range(first + span, last + 1):
        s = _EPOCH + w * window
        e = s + window
        cur = frame[index == w]
        ref = frame[index.isin(stable[-span:])]
        if len(cur) < settings.min_window or len(ref) == 0:
            skipped += 1
            windows.append(
                Window(s.to_pydatetime(), e.to_pydatetime(), len(cur), len(ref), None, None)
            )
            stable.append(w)
            continue
        before = sum(len(v) for v in hits.values())
        cat = categorical_drift(
            _counts(ref["category"]),
            _counts(cur["category"]),
            small_reference=settings.small_reference,
            p_value=settings.p_value,
            js_threshold=settings.js_threshold,
        )
        ref_b, cur_b = ref["behavior"].dropna(), cur["behavior"].dropna()
        beh = None
        if len(ref_b) and len(cur_b):
            beh = categorical_drift(
                _counts(ref_b),
                _counts(cur_b),
                small_reference=settings.small_reference,
                p_value=settings.p_value,
                js_threshold=settings.js_threshold,
            )
        windows.append(Window(s.to_pydatetime(), e.to_pydatetime(), len(cur), len(ref), cat, beh))
        if cat.drifted:
            moved = cat.moved()[:3]
            detail = f"{_describe(cat)}; moved: " + ", ".join(
                f"{c} {a:.1%}→{b:.1%}" for c, a, b in moved
            )
            ids = _examples(cur, moved[0][0], examples)
            hits.setdefault(("category_drift", "categories"), []).append((s, detail, ids))
        if beh is not None and beh.drifted:
            moved = beh.moved()[:3]
            detail = f"{_describe(beh)}; moved: " + ", ".join(
                f"{c} {a:.1%}→{b:.1%}" for c, a, b in moved
            )
            ids = cur[cur["behavior"] == moved[0][0]]["conversation_id"].head(examples).tolist()
            hits.setdefault(("behavior_drift", "behaviors"), []).append((s, detail, ids))
        ref_counts = Counter(_counts(ref["category"]))
        cur_counts = Counter(_counts(cur["category"]))
        for category in sorted(set(ref_counts) | set(cur_counts)):
            if ref_counts[category] < MIN_CHART_EVENTS:
                continue  # too rare to chart: the normal limits mean nothing (chi-squared covers it)
            centre = ref_counts[category] / len(ref)
            chart = p_chart([cur_counts[category]], [len(cur)], centre=centre)
            if bool(chart.out_of_control[0]):
                detail = (
                    f"share {chart.rate[0]:.1%} outside 3σ limits "
                    f"[{chart.lower[0]:.1%}, {chart.upper[0]:.1%}] around {centre:.1%}"
                )
                ids = _examples(cur, category, examples)
                hits.setdefault(("control_chart", category), []).append((s, detail, ids))
        for alert in rates:
            k, n = _rate(cur, alert, policy)
            if n == 0:
                continue
            rate = wilson(k, n)
            if rate.low > alert.max:
                detail = f"{alert.metric} {rate} above max {alert.max:.1%}"
                inside = cur[_subtree(cur, alert.category, policy)]
                ids = inside["conversation_id"].head(examples).tolist()
                hits.setdefault(("rate", f"{alert.category} {alert.metric}"), []).append(
                    (s, detail, ids)
                )
        if sum(len(v) for v in hits.values()) == before:
            stable.append(w)
    last_start = windows[-1].start if windows else None
    alerts = _runs(hits, window, last_start)
    return DriftReport(settings, windows, alerts, skipped)


def _describe(result: DriftResult) -> str:
    if result.method == "chi_square":
        return (
            f"chi-squared p={result.score:.2g} < {result.threshold} "
            f"(reference {result.reference_n:,}, window {result.current_n:,})"
        )
    return (
        f"Jensen–Shannon distance {result.score:.3f} ≥ {result.threshold} "
        f"(reference {result.reference_n:,}, window {result.current_n:,})"
    )


def _examples(frame: pd.DataFrame, category: str, n: int) -> list[int]:
    return [int(x) for x in frame[frame["category"] == category]["conversation_id"].head(n)]


def _runs(
    hits: dict[tuple[AlertKind, str], list[tuple[pd.Timestamp, str, list[int]]]],
    window: pd.Timedelta,
    last_start: dt.datetime | None,
) -> list[Alert]:
    alerts: list[Alert] = []
    for (kind, subject), points in hits.items():
        run: list[tuple[pd.Timestamp, str, list[int]]] = []
        for point in points:
            if run and point[0] - run[-1][0] != window:
                alerts.append(_alert(kind, subject, run, window, last_start))
                run = []
            run.append(point)
        if run:
            alerts.append(_alert(kind, subject, run, window, last_start))
    # Active alerts first, then the most recent.
    alerts.sort(key=lambda a: (not a.active, -a.until.timestamp(), a.kind, a.subject))
    return alerts


def _alert(
    kind: AlertKind,
    subject: str,
    run: list[tuple[pd.Timestamp, str, list[int]]],
    window: pd.Timedelta,
    last_start: dt.datetime | None,
) -> Alert:
    first, latest = run[0], run[-1]
    return Alert(
        kind=kind,
        subject=subject,
        since=first[0].to_pydatetime(),
        until=(latest[0] + window).to_pydatetime(),
        windows=len(run),
        detail=latest[1],
        active=last_start is not None and latest[0].to_pydatetime() == last_start,
        examples=latest[2],
    )
