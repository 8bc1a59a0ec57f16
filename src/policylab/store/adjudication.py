"""Adjudication: the queue of items without agreement, every label on one of them, the final
decision, and the places where the adjudicators found the policy ambiguous.

Labels stay blind until an item has all its labels: `item_labels` refuses an item that is still
open, whoever asks, so no endpoint can leak a label to someone still labelling it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from policylab.campaigns.schema import LabelInput
from policylab.errors import Location, PolicylabError
from policylab.store.campaigns import schema_of
from policylab.store.labelling import QueueError, now_utc
from policylab.store.models import (
    Adjudication,
    Assignment,
    Campaign,
    CampaignItem,
    Item,
    Label,
    Response,
    User,
)

VISIBLE = ("complete", "adjudication", "adjudicated")


@dataclass(frozen=True)
class QueueEntry:
    campaign_item_id: int
    item_id: str
    n_labels: int
    n_skips: int
    categories: list[str]
    reason: str
    """`disagreement` or `skipped`."""


def adjudication_queue(session: Session, campaign: Campaign) -> list[QueueEntry]:
    rows = session.execute(
        select(CampaignItem, Item.external_id, Item.categories)
        .join(Item, Item.id == CampaignItem.item_id)
        .where(CampaignItem.campaign_id == campaign.id, CampaignItem.status == "adjudication")
        .order_by(CampaignItem.position)
    ).all()
    return [
        QueueEntry(
            ci.id,
            ext,
            ci.n_labels,
            ci.n_skips,
            list(cats),
            "disagreement" if ci.n_labels >= ci.k else "skipped",
        )
        for ci, ext, cats in rows
    ]


@dataclass(frozen=True)
class LabelShown:
    annotator: str
    behavior: str | None
    violation: bool | None
    category: str | None
    rule_ids: list[str]
    rationale: str | None
    confidence: int | None
    created_at: dt.datetime


@dataclass(frozen=True)
class ItemForReview:
    campaign_item_id: int
    item_id: str
    status: str
    messages: list[dict[str, Any]]
    response: str | None
    categories: list[str]
    labels: list[LabelShown]
    skips: list[tuple[str, str]]
    adjudication: Adjudication | None


def item_labels(session: Session, campaign: Campaign, campaign_item_id: int) -> ItemForReview:
    """Every label, rationale and skip reason on one item; refused while it is still open."""
    ci = session.get(CampaignItem, campaign_item_id)
    if ci is None or ci.campaign_id != campaign.id or ci.role == "qualification":
        raise QueueError(f"no item {campaign_item_id} in campaign {campaign.name}", status=404)
    if ci.status not in VISIBLE:
        raise QueueError(
            "labels stay hidden until every annotator has labelled the item", status=403
        )
    item = session.get(Item, ci.item_id)
    assert item is not None
    response = session.get(Response, ci.response_id) if ci.response_id else None
    labels = [
        LabelShown(
            name,
            lb.behavior,
            lb.violation,
            lb.category,
            list(lb.rule_ids),
            lb.rationale,
            lb.confidence,
            lb.created_at,
        )
        for lb, name in session.execute(
            select(Label, User.name)
            .join(User, User.id == Label.annotator_id)
            .where(Label.campaign_item_id == ci.id)
            .order_by(Label.id)
        )
    ]
    skips = [
        (name, reason or "")
        for name, reason in session.execute(
            select(User.name, Assignment.skip_reason)
            .join(User, User.id == Assignment.annotator_id)
            .where(Assignment.campaign_item_id == ci.id, Assignment.status == "skipped")
            .order_by(Assignment.id)
        )
    ]
    adjudication = session.scalars(
        select(Adjudication).where(Adjudication.campaign_item_id == ci.id)
    ).first()
    return ItemForReview(
        ci.id,
        item.external_id,
        ci.status,
        item.messages,
        response.text if response else None,
        list(item.categories),
        labels,
        skips,
        adjudication,
    )


def record_adjudication(
    session: Session,
    campaign: Campaign,
    campaign_item_id: int,
    adjudicator: User,
    label: LabelInput,
    *,
    rationale: str,
    policy_ambiguous: bool = False,
    ambiguous_rule_ids: list[str] | None = None,
    note: str | None = None,
    now: dt.datetime | None = None,
) -> Adjudication:
    """Record the final label of an item in the adjudication queue. Run it in `write_session`."""
    now = now or now_utc()
    schema = schema_of(campaign)
    label = label.model_copy(update={"rationale": rationale})
    schema.validate_label(label, field_prefix="adjudication")
    if not rationale.strip():
        raise PolicylabError(
            "an adjudication needs a rationale",
            location=Location(field="adjudication.rationale"),
            hint="say why this label is right, for the next reader and the next policy revision",
        )
    rules = {r.value for r in schema.rules}
    ambiguous = list(dict.fromkeys(ambiguous_rule_ids or []))
    unknown = [r for r in ambiguous if r not in rules]
    if unknown:
        raise PolicylabError(
            f"unknown rule id(s) {', '.join(unknown)}",
            location=Location(field="adjudication.ambiguous_rule_ids"),
            hint=f"use rule ids of policy {schema.policy_id} {schema.policy_version}",
        )
    if ambiguous and not policy_ambiguous:
        policy_ambiguous = True
    query = select(CampaignItem).where(CampaignItem.id == campaign_item_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    ci = session.scalars(query).first()
    if ci is None or ci.campaign_id != campaign.id:
        raise QueueError(f"no item {campaign_item_id} in campaign {campaign.name}", status=404)
    if ci.status == "adjudicated":
        raise QueueError("this item has already been adjudicated", status=409)
    if ci.status != "adjudication":
        raise QueueError("this item is not waiting for adjudication", status=409)
    adjudication = Adjudication(
        campaign_id=campaign.id,
        campaign_item_id=ci.id,
        adjudicator_id=adjudicator.id,
        behavior=label.behavior.value if label.behavior else None,
        violation=label.violation,
        category=label.category,
        rule_ids=list(label.rule_ids),
        rationale=rationale.strip(),
        policy_ambiguous=policy_ambiguous,
        ambiguous_rule_ids=ambiguous,
        note=(note or "").strip() or None,
        created_at=now,
    )
    session.add(adjudication)
    ci.status, ci.resolved_at = "adjudicated", now
    ci.final = {
        **label.content(),
        "source": "adjudication",
        "adjudicator": adjudicator.name,
        "n_labels": ci.n_labels,
    }
    session.flush()
    return adjudication


@dataclass(frozen=True)
class Ambiguity:
    rule_id: str
    """A rule id, or `(no rule given)`."""
    title: str | None
    campaign: str
    item_id: str
    adjudicator: str
    rationale: str
    note: str | None


def ambiguities(session: Session, campaign: Campaign | None = None) -> list[Ambiguity]:
    """Every "the policy is ambiguous here" flag, one row per rule id, ordered by rule."""
    query = (
        select(Adjudication, Campaign, Item.external_id, User.name)
        .join(Campaign, Campaign.id == Adjudication.campaign_id)
        .join(CampaignItem, CampaignItem.id == Adjudication.campaign_item_id)
        .join(Item, Item.id == CampaignItem.item_id)
        .join(User, User.id == Adjudication.adjudicator_id)
        .where(Adjudication.policy_ambiguous.is_(True))
        .order_by(Adjudication.id)
    )
    if campaign is not None:
        query = query.where(Adjudication.campaign_id == campaign.id)
    out = []
    for adj, camp, ext, name in session.execute(query):
        titles = {r.value: r.title for r in schema_of(camp).rules}
        for rid in adj.ambiguous_rule_ids or ["(no rule given)"]:
            out.append(
                Ambiguity(rid, titles.get(rid), camp.name, ext, name, adj.rationale, adj.note)
            )
    return sorted(out, key=lambda a: (a.rule_id, a.campaign, a.item_id))
