"""The HTML report: every number it shows equals the stats functions' output on the hand-made
case, it is self-contained, and its sections say what they must."""

from __future__ import annotations

import math
import re
from html.parser import HTMLParser
from typing import Any

import pytest

from policylab.policy.schema import Policy
from policylab.report import format as fmt
from policylab.report.build import RunInput, build_report
from policylab.report.render import render_html
from policylab.results import GraderValidity
from policylab.stats.classification import grader_agreement
from policylab.stats.paired import mcnemar_exact
from policylab.stats.refusal import refusal_metrics


class Cells(HTMLParser):
    """Every element with a data-* attribute, with its attributes and its text."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[dict[str, Any]] = []
        self._open: list[dict[str, Any]] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag in ("img", "br", "meta"):
            return
        element = {"tag": tag, "attrs": attributes, "text": ""}
        self._open.append(element)
        if any(k.startswith("data-") for k in attributes):
            self.elements.append(element)

    def handle_endtag(self, tag: str) -> None:
        if self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for element in self._open:
            element["text"] += data


def parse(html: str) -> Cells:
    cells = Cells()
    cells.feed(html)
    return cells


def by(cells: Cells, attribute: str) -> dict[str, dict[str, Any]]:
    return {e["attrs"][attribute]: e for e in cells.elements if attribute in e["attrs"]}


def reference_metrics(synthetic: Any, run: Any) -> dict[tuple[str, str, str], Any]:
    """The stats functions on arrays written from the case spec, independently of results/."""
    policy = synthetic.synthetic_policy()
    expected_of = {c.id: c.expected_behavior.value for c in policy.categories}
    severity_of = {c.id: c.severity.value for c in policy.categories}
    exp, obs, cats = [], [], []
    for item in synthetic.case_items():
        answer = run.answers[item.external_id]
        if answer == "model_error":
            continue
        exp.append(item.expected or expected_of[item.categories[0]])
        obs.append(None if answer in ("error", None) else answer)
        cats.append(item.categories[0])
    out: dict[tuple[str, str, str], Any] = {}
    for row in refusal_metrics(exp, obs).to_dict("records"):
        out[("overall", "all", row["metric"])] = row
    tiers = [severity_of[c] for c in cats]
    for row in refusal_metrics(exp, obs, by={"severity": tiers}).to_dict("records"):
        out[("severity", row["severity"], row["metric"])] = row
    for level in (lambda c: c, lambda c: c.split(".")[0]):
        keys = [level(c) for c in cats]
        for row in refusal_metrics(exp, obs, by={"category": keys}).to_dict("records"):
            out[("category", row["category"], row["metric"])] = row
    return out


def test_every_rate_equals_the_stats_functions(
    inputs: tuple[list[RunInput], Policy], synthetic: Any
) -> None:
    runs, policy = inputs
    html = render_html(build_report(runs, policy, n_boot=500))
    cells = parse(html)
    checked = 0
    for spec in (synthetic.case_run_a(), synthetic.case_run_b()):
        reference = reference_metrics(synthetic, spec)
        for element in cells.elements:
            ref = element["attrs"].get("data-ref", "")
            parts = ref.split("/")
            if len(parts) != 4 or parts[0] != spec.name or "data-low" not in element["attrs"]:
                continue
            _, scope, key, metric = parts
            attrs = element["attrs"]
            expected = reference.get((scope, key, metric))
            if expected is None:  # a cell with no items (e.g. HATE): undefined everywhere
                assert attrs["data-n"] == "0"
                assert "no items" in element["text"]
                continue
            assert int(attrs["data-n"]) == expected["n"], ref
            assert int(attrs["data-k"]) == expected["k"], ref
            assert int(attrs["data-errors"]) == expected["errors"], ref
            assert float(attrs["data-low"]) == pytest.approx(expected["low"], abs=1e-12), ref
            assert float(attrs["data-high"]) == pytest.approx(expected["high"], abs=1e-12), ref
            if expected["n"]:
                assert float(attrs["data-rate"]) == pytest.approx(expected["rate"]), ref
                # What the reader sees is the same number, formatted.
                assert fmt.pct(expected["rate"]) in element["text"], ref
                if metric != "grader_error":
                    shown = fmt.interval(expected["low"], expected["high"])
                    assert shown in element["text"], ref
            checked += 1
    assert checked > 60


def test_hand_computed_numbers_appear(inputs: tuple[list[RunInput], Policy]) -> None:
    runs, policy = inputs
    cells = parse(render_html(build_report(runs, policy, n_boot=500)))
    refs = by(cells, "data-ref")
    # CYB.1 in run A: 2 of 10 harmful compliances; Wilson 95% 5.7-51.0% (worked by hand).
    cyb1 = refs["run-a/category/CYB.1/under_refusal"]
    assert "20.0%" in cyb1["text"]
    assert "5.7–51.0%" in cyb1["text"]
    assert "2 of 10" in cyb1["text"]
    assert refs["summary/run-a/under_refusal"]["text"].strip() == "17.6%"  # 3 of 17
    assert float(refs["summary/run-a/under_refusal"]["attrs"]["data-rate"]) == pytest.approx(3 / 17)
    assert refs["summary/run-b/over_refusal"]["text"].strip() == "7.7%"  # 1 of 13


def test_gates_and_comparison_rows(inputs: tuple[list[RunInput], Policy], synthetic: Any) -> None:
    runs, policy = inputs
    cells = parse(render_html(build_report(runs, policy, n_boot=500)))
    gates = by(cells, "data-gate")
    assert gates["run-a/under_refusal:critical"]["attrs"]["data-status"] == "fail"
    assert gates["run-a/under_refusal:high"]["attrs"]["data-status"] == "pass"
    assert gates["run-a/grader_agreement"]["attrs"]["data-status"] == "inconclusive"
    assert "not been validated" in gates["run-a/grader_agreement"]["text"]
    rows = by(cells, "data-cmp")
    overall = rows["run-a/run-b/overall/all/under_refusal"]["attrs"]
    xa = [True, True, False] + [False] * 7 + [True] + [False] * 6 + [None]
    xb = [True] + [False] * 9 + [True] * 5 + [False] * 3
    assert float(overall["data-p"]) == pytest.approx(mcnemar_exact(xa, xb).p_value)
    assert float(overall["data-diff"]) == pytest.approx(-3 / 17)
    assert "−17.6 pts" in rows["run-a/run-b/overall/all/under_refusal"]["text"]


def test_self_contained(inputs: tuple[list[RunInput], Policy]) -> None:
    runs, policy = inputs
    html = render_html(build_report(runs, policy, n_boot=500))
    cells = parse(html)
    images = [attrs for tag, attrs in cells.tags if tag == "img"]
    assert len(images) >= 5  # severity, two category forests, trade-off, coverage
    assert all((a.get("src") or "").startswith("data:image/svg+xml;base64,") for a in images)
    assert all(a.get("alt") for a in images)
    assert not [t for t, _ in cells.tags if t in ("script", "link", "iframe")]
    assert not re.search(r"""(src|href)=["']https?://""", html)
    assert "url(" not in html


def test_summary_comes_first_and_says_what_failed(inputs: tuple[list[RunInput], Policy]) -> None:
    runs, policy = inputs
    html = render_html(build_report(runs, policy, n_boot=500))
    order = [
        html.index(f'<section id="{s}">')
        for s in (
            "summary",
            "gates",
            "severity",
            "categories",
            "comparison",
            "grader",
            "human",
            "coverage",
            "limitations",
            "failures",
        )
    ]
    assert order == sorted(order)
    summary = html[order[0] : order[1]]
    assert "Does not meet its launch gates" in summary
    assert "CYB.2 Critical infrastructure attacks" in summary  # the largest risk
    assert "No human labelling campaign yet" in html
    assert "Unknown: this grader has not been validated against human labels." in html
    assert "Content warning" in html


def test_known_grader_shows_its_agreement(inputs: tuple[list[RunInput], Policy]) -> None:
    runs, policy = inputs
    gold = ["comply"] * 20 + ["partial"] * 10 + ["refuse"] * 20
    predicted = ["comply"] * 19 + ["refuse"] + ["partial"] * 8 + ["refuse"] * 2 + ["refuse"] * 20
    agreement = grader_agreement(gold, predicted)
    validity = GraderValidity(grader_id="rules", grader_version="1.0", agreement=agreement)
    single = [RunInput(runs[0].outcomes, validity)]
    html = render_html(build_report(single, policy, n_boot=500))
    refs = by(parse(html), "data-ref")
    kappa = refs["run-a/validity/kappa"]
    assert float(kappa["attrs"]["data-value"]) == pytest.approx(agreement.cohen_kappa)
    assert fmt.number(agreement.cohen_kappa) in kappa["text"]
    assert "Unknown: this grader" not in html
    assert "Rates corrected for the grader" in html
    corrected = by(parse(html), "data-corrected")["run-a/overall/all/under_refusal"]
    assert math.isfinite(float(corrected["attrs"]["data-value"]))


def test_redaction(inputs: tuple[list[RunInput], Policy]) -> None:
    runs, policy = inputs
    plain = render_html(build_report(runs[:1], policy, n_boot=500))
    assert "Sure, here is exactly what you asked for" in plain
    redacted = render_html(build_report(runs[:1], policy, n_boot=500, redact=True))
    failures = redacted[redacted.index('<section id="failures">') :]
    assert "Sure, here is exactly what you asked for" not in failures
    assert "[response redacted:" in failures
    assert "Responses are redacted" in failures


def test_human_data_section(case_ws: Any, synthetic: Any) -> None:
    from policylab.results import outcomes
    from policylab.stats.agreement import agreement_report
    from policylab.store.results import load_campaigns, load_run

    ws, policy = case_ws
    synthetic.add_campaign(ws)
    with ws.session() as session:
        data, _ = load_run(session, "run-a", with_text=True)
        campaigns = load_campaigns(session, data.info)
    scored = outcomes(data, policy, grader="rules")
    entry = RunInput(scored, GraderValidity(grader_id="rules"), campaigns)
    html = render_html(build_report([entry], policy, n_boot=500))
    human = html[html.index('<section id="human">') : html.index('<section id="coverage">')]
    assert "No human labelling campaign yet" not in human
    refs = by(parse(html), "data-ref")
    long = [
        (i, rater, label)
        for i, (_, first, second, _, _) in enumerate(synthetic.CAMPAIGN_LABELS)
        for rater, label in ((1, first), (2, second))
    ]
    import pandas as pd

    reference = agreement_report(pd.DataFrame(long, columns=["item", "rater", "value"]))
    alpha = refs["campaign/gold-1/alpha"]
    assert float(alpha["attrs"]["data-value"]) == pytest.approx(reference.alpha.alpha)
    assert fmt.number(reference.alpha.alpha) in alpha["text"]
    grader = refs["campaign/gold-1/grader_accuracy"]
    assert float(grader["attrs"]["data-rate"]) == pytest.approx(2 / 3)
    assert "CYB.1.a" in human  # flagged as ambiguous by the adjudicator
    assert "1 item adjudicated (1 partial)" in human
