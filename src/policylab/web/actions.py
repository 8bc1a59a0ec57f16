"""The operations behind both the JSON API and the pages, each one write transaction.

A label is acknowledged (the HTTP response sent) only after `run_write` has returned, that is,
after the commit.
"""

from __future__ import annotations

from fastapi import HTTPException
from sqlalchemy.orm import Session

from policylab.campaigns.schema import LabelInput
from policylab.store.adjudication import record_adjudication
from policylab.store.campaigns import get_campaign
from policylab.store.labelling import (
    NoWork,
    Submitted,
    Work,
    next_work,
    run_write,
    skip_item,
    submit_label,
)
from policylab.store.models import Adjudication, Assignment, Campaign, User
from policylab.web.deps import AppState


def campaign_or_404(session: Session, name: str) -> Campaign:
    from policylab.errors import PolicylabError

    try:
        return get_campaign(session, name)
    except PolicylabError:
        raise HTTPException(status_code=404, detail=f"no campaign {name!r}") from None


def _user(session: Session, user: User) -> User:
    fresh = session.get(User, user.id)
    if fresh is None:
        raise HTTPException(status_code=401, detail="sign in first")
    return fresh


def fetch_next(app: AppState, name: str, user: User) -> Work | NoWork:
    def work(session: Session) -> Work | NoWork:
        return next_work(session, campaign_or_404(session, name), _user(session, user))

    return run_write(app.engine, work)


def submit(
    app: AppState, name: str, user: User, assignment_id: int, label: LabelInput
) -> Submitted:
    def work(session: Session) -> Submitted:
        campaign = campaign_or_404(session, name)
        return submit_label(session, campaign, _user(session, user), assignment_id, label)

    return run_write(app.engine, work)


def skip(app: AppState, name: str, user: User, assignment_id: int, reason: str) -> Assignment:
    def work(session: Session) -> Assignment:
        campaign = campaign_or_404(session, name)
        return skip_item(session, campaign, _user(session, user), assignment_id, reason)

    return run_write(app.engine, work)


def adjudicate(
    app: AppState,
    name: str,
    user: User,
    campaign_item_id: int,
    label: LabelInput,
    *,
    rationale: str,
    policy_ambiguous: bool,
    ambiguous_rule_ids: list[str],
    note: str | None,
) -> Adjudication:
    def work(session: Session) -> Adjudication:
        campaign = campaign_or_404(session, name)
        return record_adjudication(
            session,
            campaign,
            campaign_item_id,
            _user(session, user),
            label,
            rationale=rationale,
            policy_ambiguous=policy_ambiguous,
            ambiguous_rule_ids=ambiguous_rule_ids,
            note=note,
        )

    return run_write(app.engine, work)
