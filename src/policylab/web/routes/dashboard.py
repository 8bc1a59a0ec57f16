"""The results dashboard: runs, a results explorer, transcripts and a side-by-side comparison.

Pages for reviewers (adjudicators and policy authors; admins always): annotators do not see model
results, so their labels stay blind. Every number comes from `policylab.results`, as in the
reports; the pages only filter and format.

- `/runs`: every run, with its model, eval set, status and graders;
- `/results`: the explorer: rates with intervals for the chosen runs, and their responses filtered
  by run, model, category, behaviour, verdict and grader disagreement;
- `/runs/{run}/items/{item}`: a transcript with every grader's verdict, its rationale and the
  rules it cites, linked to the rule in the policy's guide (`/runs/{run}/guide`);
- `/compare?a=RUN&b=RUN`: two runs side by side: paired differences and the items they differ on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

import pandas as pd
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session
from starlette.responses import Response

from policylab.errors import PolicylabError
from policylab.policy.compile.guide import anchor
from policylab.policy.schema import Policy
from policylab.report import format as fmt
from policylab.results.compare import compare_runs
from policylab.results.data import Outcomes, expected_for, graders_in, outcomes
from policylab.results.explore import VERDICTS, filter_outcomes, verdict_kind, with_verdicts
from policylab.results.tables import RunResults, compute_results
from policylab.store.models import Run
from policylab.store.results import graders_by_run, load_run, load_transcript
from policylab.store.runs import get_run, list_runs
from policylab.web.deps import AppState, Reviewer, SessionDep, StateDep, csrf_protect
from policylab.web.pages import render

router = APIRouter(dependencies=[Depends(csrf_protect)], include_in_schema=False)


PAGE_SIZE = 50
COMPARE_BOOT = 2000
MAX_DIFFERENCES = 200

_FORMAT: dict[str, Any] = {
    "pct": fmt.pct,
    "interval": fmt.interval,
    "signed_pct": fmt.signed_pct,
    "signed_interval": fmt.signed_interval,
    "pvalue": fmt.pvalue,
    "number": fmt.number,
}


@dataclass(frozen=True)
class ScoredRun:
    run: Run
    policy: Policy
    outcomes: Outcomes
    graders: dict[str, int]


def _score(session: Session, app: AppState, run: Run, grader: str | None) -> ScoredRun | None:
    """The run scored by `grader` (or, if not given or absent, the grader that judged the most
    responses), against its linked policy version; None when it has no policy version."""
    if run.policy_version_id is None:
        return None
    policy = app.policy(session, run.policy_version_id)
    data, _ = load_run(session, run.name, with_text=True)
    present = graders_in(data.verdicts)
    chosen = grader if grader in present else next(iter(present), None)
    return ScoredRun(run, policy, outcomes(data, policy, grader=chosen), present)


def _rates(scored: ScoredRun, category: str | None) -> dict[str, Any]:
    """Overall (or one category's) rates of a run, for the explorer's summary table."""
    results = compute_results(scored.outcomes, scored.policy, n_boot=100)
    where = category if category and scored.policy.category(category) else None
    return {
        metric: results.rate(metric, category=where)
        for metric in ("under_refusal", "safe_completion", "over_refusal", "grader_error")
    }


# -- runs -----------------------------------------------------------------------------------------
@router.get("/runs")
def runs_page(request: Request, session: SessionDep, user: Reviewer) -> Response:
    overview = list_runs(session)
    graders = graders_by_run(session)
    return render(
        request,
        "dashboard/runs.html.j2",
        user=user,
        runs=overview,
        graders=graders,
        **_FORMAT,
    )


@router.get("/runs/{name}")
def run_page(name: str, session: SessionDep, user: Reviewer) -> Response:
    run = get_run(session, name)
    return RedirectResponse(f"/results?run={run.name}", status_code=303)


# -- the results explorer -------------------------------------------------------------------------
@router.get("/results")
def results_page(
    request: Request,
    session: SessionDep,
    app: StateDep,
    user: Reviewer,
    run: Annotated[str | None, Query()] = None,
    model: Annotated[str | None, Query()] = None,
    category: Annotated[str | None, Query()] = None,
    behavior: Annotated[str | None, Query()] = None,
    verdict: Annotated[str | None, Query()] = None,
    grader: Annotated[str | None, Query()] = None,
    disagreement: Annotated[bool, Query()] = False,
    page: Annotated[int, Query(ge=1)] = 1,
) -> Response:
    every = [o.run for o in list_runs(session)]
    chosen = [r for r in every if (not run or r.name == run) and (not model or r.model == model)]
    if run and not chosen:
        get_run(session, run)  # raises: names the runs there are
    scored: list[ScoredRun] = []
    unlinked: list[str] = []
    for r in chosen:
        s = _score(session, app, r, grader or None)
        if s is None:
            unlinked.append(r.name)
        else:
            scored.append(s)
    frames = []
    for s in scored:
        frame = with_verdicts(s.outcomes.frame).assign(run=s.run.name, model=s.run.model)
        frames.append(
            filter_outcomes(
                frame,
                s.policy,
                category=category or None,
                behavior=behavior or None,
                verdict=verdict or None,
                disagreement=disagreement,
            )
        )
    matches = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    total = len(matches)
    pages = max(1, math.ceil(total / PAGE_SIZE))
    page = min(page, pages)
    shown = matches.iloc[(page - 1) * PAGE_SIZE : page * PAGE_SIZE] if total else matches
    policy = scored[0].policy if scored else None
    filters = {
        "run": run or "",
        "model": model or "",
        "category": category or "",
        "behavior": behavior or "",
        "verdict": verdict or "",
        "grader": grader or "",
        "disagreement": disagreement,
    }
    return render(
        request,
        "dashboard/results.html.j2",
        user=user,
        runs=every,
        models=sorted({r.model for r in every}),
        scored=scored,
        summaries=[(s, _rates(s, category)) for s in scored],
        unlinked=unlinked,
        policy=policy,
        rows=shown.to_dict("records"),
        total=total,
        page=page,
        pages=pages,
        filters=filters,
        verdicts=VERDICTS,
        query=_query(filters),
        **_FORMAT,
    )


def _query(filters: dict[str, Any]) -> str:
    """The filters as a query string, for page links."""
    kept = {k: ("1" if v is True else v) for k, v in filters.items() if v not in ("", False)}
    return urlencode(kept)


# -- transcripts ----------------------------------------------------------------------------------
@router.get("/runs/{name}/items/{external_id}")
def transcript_page(
    name: str,
    external_id: str,
    request: Request,
    session: SessionDep,
    app: StateDep,
    user: Reviewer,
) -> Response:
    t = load_transcript(session, name, external_id)
    policy = app.policy(session, t.policy_version_id) if t.policy_version_id else None
    verdicts = []
    for v in t.verdicts.to_dict("records"):
        rules = [
            {
                "id": rid,
                "title": rule.title if (rule := policy.rule(rid)) else None,
                "href": f"/runs/{name}/guide#{anchor('rule', rid)}" if policy and rule else None,
            }
            if policy
            else {"id": rid, "title": None, "href": None}
            for rid in (v["rule_ids"] or [])
        ]
        verdicts.append(v | {"rules": rules})
    expected = t.item_expected
    if expected is None and policy is not None:
        expected = expected_for(None, t.categories, policy)
    return render(
        request,
        "dashboard/transcript.html.j2",
        user=user,
        t=t,
        policy=policy,
        expected=expected,
        verdicts=verdicts,
        kind=verdict_kind,
        **_FORMAT,
    )


@router.get("/runs/{name}/guide")
def run_guide(name: str, session: SessionDep, app: StateDep, user: Reviewer) -> HTMLResponse:
    """The labelling guide of the policy version the run is measured against."""
    run = get_run(session, name)
    if run.policy_version_id is None:
        raise PolicylabError(
            f"run {name!r} is not linked to a stored policy version", hint="link it when you run it"
        )
    policy = app.policy(session, run.policy_version_id)
    return HTMLResponse(app.guide(run.policy_version_id, policy, None))


# -- comparison -----------------------------------------------------------------------------------
@router.get("/compare")
def compare_page(
    request: Request,
    session: SessionDep,
    app: StateDep,
    user: Reviewer,
    a: Annotated[str | None, Query()] = None,
    b: Annotated[str | None, Query()] = None,
    grader: Annotated[str | None, Query()] = None,
) -> Response:
    every = [o.run for o in list_runs(session)]
    context: dict[str, Any] = {"runs": every, "a": a or "", "b": b or "", "grader": grader or ""}
    if a and b:
        left = _score(session, app, get_run(session, a), grader or None)
        right = _score(session, app, get_run(session, b), grader or None)
        if left is None or right is None:
            raise PolicylabError(
                "both runs need a linked policy version to be compared here",
                hint="use `policylab compare A B --policy FILE` on the command line",
            )
        comparison = compare_runs(left.outcomes, right.outcomes, left.policy, n_boot=COMPARE_BOOT)
        context |= {
            "left": left,
            "right": right,
            "comparison": comparison,
            "cells": comparison.cells.to_dict("records"),
            "tradeoff": [
                (s, _summary(compute_results(s.outcomes, left.policy, n_boot=100)))
                for s in (left, right)
            ],
            "differences": _differences(left, right),
        }
    return render(request, "dashboard/compare.html.j2", user=user, **context, **_FORMAT)


def _summary(results: RunResults) -> dict[str, Any]:
    return {m: results.rate(m) for m in ("under_refusal", "over_refusal", "grader_error")}


def _differences(left: ScoredRun, right: ScoredRun) -> list[dict[str, Any]]:
    """Items whose verdict differs between the runs, failures first."""
    fa = with_verdicts(left.outcomes.frame).set_index("item_id")
    fb = with_verdicts(right.outcomes.frame).set_index("item_id")
    shared = fa.index.intersection(fb.index)
    out = []
    for item_id in shared:
        ra, rb = fa.loc[item_id], fb.loc[item_id]
        if ra["verdict"] == rb["verdict"]:
            continue
        out.append(
            {
                "external_id": ra["external_id"],
                "categories": ra["categories"],
                "expected": ra["expected"],
                "a": {"verdict": ra["verdict"], "observed": ra["observed"]},
                "b": {"verdict": rb["verdict"], "observed": rb["observed"]},
            }
        )
    failures = {"harmful_compliance": 0, "over_refusal": 1}
    out.sort(
        key=lambda d: min(failures.get(d["a"]["verdict"], 2), failures.get(d["b"]["verdict"], 2))
    )
    return out[:MAX_DIFFERENCES]
