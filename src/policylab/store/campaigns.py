"""Campaigns in the workspace: creating one from a policy version and an eval set or run, reading
its progress, its labels as a frame, and its final labels.

Creating a campaign picks its items (every item of the set, or of the run with a response; or the
listed ids), draws the qualification items and the hidden gold items at random from the items with
a known answer, and shuffles the rest so gold cannot be told apart by its place in the queue.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from policylab.campaigns.consensus import LabelView, details
from policylab.campaigns.exports import FinalRecord
from policylab.campaigns.gold import GoldAnswer
from policylab.campaigns.schema import LabelInput, LabelSchema, Mode, derive_schema
from policylab.errors import PolicylabError
from policylab.stats.aggregation import dawid_skene
from policylab.store.eval_sets import get_eval_set
from policylab.store.models import (
    Adjudication,
    Assignment,
    Campaign,
    CampaignItem,
    EvalSet,
    Item,
    Label,
    PolicyVersion,
    Qualification,
    Response,
    Run,
    User,
    VerdictRecord,
)
from policylab.store.policies import policy_of
from policylab.store.runs import get_run

AGREEMENT_RULES = ("unanimous", "majority")
STATUSES = ("active", "paused", "closed")
QUEUE_ROLES = ("work", "gold")


@dataclass
class CampaignSpec:
    """How to build a campaign. `gold` maps item ids (in the eval set) to known answers."""

    name: str
    k: int = 3
    gold: Mapping[str, GoldAnswer] = field(default_factory=dict)
    gold_from_expected: bool = False
    gold_share: float = 0.1
    qualification_n: int = 0
    qualification_threshold: float = 0.8
    reservation_seconds: int = 1800
    agreement: str = "unanimous"
    max_per_annotator: int | None = None
    item_ids: Sequence[str] | None = None
    limit: int | None = None
    seed: int = 0
    rationale_required: bool = False
    description: str | None = None
    created_by: str | None = None


@dataclass(frozen=True)
class CampaignCreated:
    campaign: Campaign
    n_work: int
    n_gold: int
    n_qualification: int
    warnings: list[str]


def find_campaign(session: Session, name: str) -> Campaign | None:
    return session.scalars(select(Campaign).where(Campaign.name == name)).first()


def get_campaign(session: Session, name: str) -> Campaign:
    found = find_campaign(session, name)
    if found is None:
        known = sorted(session.scalars(select(Campaign.name)))
        raise PolicylabError(
            f"no campaign {name!r}",
            hint=f"campaigns: {', '.join(known) or 'none yet'}; "
            "create one with `policylab campaign create`",
        )
    return found


def list_campaigns(session: Session) -> list[Campaign]:
    return list(session.scalars(select(Campaign).order_by(Campaign.created_at.desc())))


def schema_of(campaign: Campaign) -> LabelSchema:
    return LabelSchema.model_validate(campaign.label_schema)


def _check_spec(spec: CampaignSpec) -> None:
    problems = []
    if not spec.name.strip() or len(spec.name) > 200:
        problems.append("name: give 1 to 200 characters")
    if spec.k < 1:
        problems.append(f"k: annotators per item must be at least 1, got {spec.k}")
    if not 0.0 <= spec.gold_share < 1.0:
        problems.append(f"gold share must be in [0, 1), got {spec.gold_share}")
    if spec.qualification_n < 0:
        problems.append("qualification items must be 0 or more")
    if not 0.0 <= spec.qualification_threshold <= 1.0:
        problems.append("the qualification pass mark must be in [0, 1]")
    if spec.reservation_seconds < 10:
        problems.append("reservations must last at least 10 seconds")
    if spec.agreement not in AGREEMENT_RULES:
        problems.append(f"agreement must be one of {', '.join(AGREEMENT_RULES)}")
    if spec.max_per_annotator is not None and spec.max_per_annotator < 1:
        problems.append("the per-annotator cap must be at least 1")
    if problems:
        raise PolicylabError("bad campaign settings: " + "; ".join(problems))


def _gold_json(schema: LabelSchema, answer: GoldAnswer) -> dict[str, Any]:
    label = LabelInput(
        behavior=answer.behavior,
        violation=answer.violation,
        category=answer.category,
        rule_ids=list(answer.rule_ids),
        rationale=answer.rationale,
    )
    schema.validate_label(label, field_prefix=f"gold[{answer.id}]")
    return {**label.content(), "source": "gold"}


def create_campaign(
    session: Session,
    spec: CampaignSpec,
    *,
    policy: PolicyVersion,
    set_name: str | None = None,
    run_name: str | None = None,
) -> CampaignCreated:
    """Create a campaign over an eval set (prompt mode) or a run's responses (response mode)."""
    _check_spec(spec)
    if (set_name is None) == (run_name is None):
        raise PolicylabError("give an eval set or a run (not both)")
    if find_campaign(session, spec.name) is not None:
        raise PolicylabError(f"campaign {spec.name!r} already exists", hint="pick another name")
    run: Run | None = get_run(session, run_name) if run_name else None
    eval_set = (
        session.get(EvalSet, run.eval_set_id) if run else get_eval_set(session, set_name or "")
    )
    assert eval_set is not None
    mode: Mode = "response" if run else "prompt"
    if spec.gold_from_expected and mode == "response":
        raise PolicylabError(
            "--gold-from-expected needs a prompt campaign: an item's expected behaviour says what "
            "a response should do, not what this response did",
            hint="pass known answers with --gold FILE instead",
        )
    schema = derive_schema(policy_of(policy), mode=mode, rationale_required=spec.rationale_required)

    query = select(Item.id, Item.external_id, Item.categories, Item.expected_behavior).where(
        Item.eval_set_id == eval_set.id
    )
    if run is not None:
        query = query.add_columns(Response.id.label("response_id")).join(
            Response,
            (Response.item_id == Item.id) & (Response.run_id == run.id) & Response.error.is_(None),
        )
    rows = session.execute(query.order_by(Item.id)).all()
    if spec.item_ids is not None:
        wanted = set(spec.item_ids)
        rows = [r for r in rows if r.external_id in wanted]
        missing = wanted - {r.external_id for r in rows}
        if missing:
            shown = ", ".join(sorted(missing)[:10])
            raise PolicylabError(
                f"{len(missing)} listed item(s) are not in {eval_set.name!r}"
                + (" with a response" if run else "")
                + f": {shown}",
                hint="list ids of the eval set's items",
            )
    if spec.limit is not None:
        rows = rows[: spec.limit]
    if not rows:
        raise PolicylabError(
            f"no items to label in {eval_set.name!r}" + (f" for run {run.name!r}" if run else ""),
            hint="import items first, or run a model on them",
        )

    gold: dict[str, dict[str, Any]] = {}
    categories = {c.value for c in schema.categories}
    for r in rows:
        answer = spec.gold.get(r.external_id)
        if answer is None and spec.gold_from_expected and r.expected_behavior:
            cat = next((c for c in r.categories if c in categories), None)
            answer = GoldAnswer(id=r.external_id, behavior=r.expected_behavior, category=cat)
        if answer is not None:
            gold[r.external_id] = _gold_json(schema, answer)
    unknown_gold = set(spec.gold) - {r.external_id for r in rows}
    warnings = []
    if unknown_gold:
        warnings.append(f"{len(unknown_gold)} gold answer(s) name items not in the campaign")

    rng = np.random.default_rng(spec.seed)
    order = [rows[int(i)] for i in rng.permutation(len(rows))]
    with_gold = [r for r in order if r.external_id in gold]
    if spec.qualification_n > len(with_gold):
        raise PolicylabError(
            f"the qualification round needs {spec.qualification_n} items with a known answer; "
            f"there are {len(with_gold)}",
            hint="pass more answers with --gold FILE, or lower --qualification",
        )
    qualification = with_gold[: spec.qualification_n]
    q_ids = {r.external_id for r in qualification}
    queue = [r for r in order if r.external_id not in q_ids]
    wanted_gold = round(spec.gold_share * len(queue))
    hidden = list(with_gold[spec.qualification_n :])[:wanted_gold]
    if len(hidden) < wanted_gold:
        warnings.append(
            f"only {len(hidden)} hidden gold item(s) of the {wanted_gold} the gold share asks for"
        )
    hidden_ids = {r.external_id for r in hidden}

    campaign = Campaign(
        name=spec.name,
        description=spec.description,
        policy_version_id=policy.id,
        eval_set_id=eval_set.id,
        run_id=run.id if run else None,
        mode=mode,
        k=spec.k,
        gold_share=spec.gold_share,
        qualification_n=spec.qualification_n,
        qualification_threshold=spec.qualification_threshold,
        reservation_seconds=spec.reservation_seconds,
        agreement=spec.agreement,
        max_per_annotator=spec.max_per_annotator,
        label_schema=schema.model_dump(mode="json"),
        status="active",
        seed=spec.seed,
        created_by=spec.created_by,
    )
    session.add(campaign)
    session.flush()

    def row(r: Any, role: str, position: int) -> dict[str, Any]:
        return {
            "campaign_id": campaign.id,
            "item_id": r.id,
            "response_id": getattr(r, "response_id", None),
            "role": role,
            "position": position,
            "gold": gold.get(r.external_id) if role != "work" else None,
            "k": spec.k,
            "n_labels": 0,
            "n_reserved": 0,
            "n_skips": 0,
            "status": "open",
        }

    values = [row(r, "qualification", i) for i, r in enumerate(qualification)]
    values += [
        row(r, "gold" if r.external_id in hidden_ids else "work", i) for i, r in enumerate(queue)
    ]
    for start in range(0, len(values), 1000):
        session.execute(insert(CampaignItem), values[start : start + 1000])
    return CampaignCreated(
        campaign=campaign,
        n_work=len(queue) - len(hidden),
        n_gold=len(hidden),
        n_qualification=len(qualification),
        warnings=warnings,
    )


def set_campaign_status(session: Session, name: str, status: str) -> Campaign:
    if status not in STATUSES:
        raise PolicylabError(f"unknown status {status!r}", hint=f"use one of {', '.join(STATUSES)}")
    campaign = get_campaign(session, name)
    campaign.status = status
    return campaign


# -- progress ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Progress:
    items: int
    """Items in the queue (work and hidden gold)."""
    complete: int
    adjudication: int
    adjudicated: int
    labels: int
    labels_needed: int
    reserved: int
    qualification: dict[str, int]

    @property
    def done(self) -> float:
        return self.labels / self.labels_needed if self.labels_needed else 1.0


def progress(session: Session, campaign: Campaign) -> Progress:
    by_status = dict(
        session.execute(
            select(CampaignItem.status, func.count(CampaignItem.id))
            .where(CampaignItem.campaign_id == campaign.id, CampaignItem.role.in_(QUEUE_ROLES))
            .group_by(CampaignItem.status)
        ).all()
    )
    sums = session.execute(
        select(
            func.count(CampaignItem.id),
            func.coalesce(func.sum(CampaignItem.n_labels), 0),
            func.coalesce(func.sum(CampaignItem.k), 0),
            func.coalesce(func.sum(CampaignItem.n_reserved), 0),
        ).where(CampaignItem.campaign_id == campaign.id, CampaignItem.role.in_(QUEUE_ROLES))
    ).one()
    quals = dict(
        session.execute(
            select(Qualification.status, func.count(Qualification.id))
            .where(Qualification.campaign_id == campaign.id)
            .group_by(Qualification.status)
        ).all()
    )
    return Progress(
        items=int(sums[0]),
        complete=int(by_status.get("complete", 0)),
        adjudication=int(by_status.get("adjudication", 0)),
        adjudicated=int(by_status.get("adjudicated", 0)),
        labels=int(sums[1]),
        labels_needed=int(sums[2]),
        reserved=int(sums[3]),
        qualification={k: int(v) for k, v in quals.items()},
    )


def annotator_counts(session: Session, campaign: Campaign, user_id: int) -> dict[str, int]:
    """One annotator's own numbers: labelled, skipped (queue items only)."""
    rows = session.execute(
        select(Assignment.status, func.count(Assignment.id))
        .join(CampaignItem, CampaignItem.id == Assignment.campaign_item_id)
        .where(
            Assignment.campaign_id == campaign.id,
            Assignment.annotator_id == user_id,
            CampaignItem.role.in_(QUEUE_ROLES),
        )
        .group_by(Assignment.status)
    )
    counts = dict(rows.all())
    return {"submitted": int(counts.get("submitted", 0)), "skipped": int(counts.get("skipped", 0))}


# -- labels as a frame ------------------------------------------------------------------------------
LABEL_COLUMNS = [
    "campaign_item_id",
    "item",
    "role",
    "status",
    "annotator",
    "behavior",
    "violation",
    "category",
    "rule_ids",
    "confidence",
    "duration_ms",
    "key",
    "gold_key",
]


def labels_frame(
    session: Session, campaign: Campaign, *, roles: Sequence[str] = QUEUE_ROLES
) -> pd.DataFrame:
    """Every label of the campaign on items of `roles`, one row per label (see LABEL_COLUMNS)."""
    schema = schema_of(campaign)
    rows = session.execute(
        select(
            Label.campaign_item_id,
            Item.external_id,
            CampaignItem.role,
            CampaignItem.status,
            CampaignItem.gold,
            User.name,
            Label.behavior,
            Label.violation,
            Label.category,
            Label.rule_ids,
            Label.confidence,
            Label.duration_ms,
        )
        .join(CampaignItem, CampaignItem.id == Label.campaign_item_id)
        .join(Item, Item.id == Label.item_id)
        .join(User, User.id == Label.annotator_id)
        .where(Label.campaign_id == campaign.id, CampaignItem.role.in_(list(roles)))
        .order_by(Label.id)
    ).all()
    records = []
    for r in rows:
        gold = r.gold or {}
        records.append(
            [
                r.campaign_item_id,
                r.external_id,
                r.role,
                r.status,
                r.name,
                r.behavior,
                r.violation,
                r.category,
                list(r.rule_ids or []),
                r.confidence,
                r.duration_ms,
                schema.decision_key(r.behavior, r.violation),
                schema.decision_key(gold.get("behavior"), gold.get("violation")) if gold else None,
            ]
        )
    return pd.DataFrame(records, columns=LABEL_COLUMNS)


# -- final labels -------------------------------------------------------------------------------------
def final_records(
    session: Session, campaign: Campaign, *, method: str = "majority"
) -> list[FinalRecord]:
    """The campaign's items with a final label, in queue order.

    `majority`: items resolved by consensus (under the campaign's agreement rule), adjudication
    or gold. `dawid_skene`: every item with a label, the decision fitted by Dawid-Skene with the
    gold items clamped to their answers; adjudicated and gold items keep their label.
    """
    if method not in ("majority", "dawid_skene"):
        raise PolicylabError(f"unknown method {method!r}", hint="use majority or dawid_skene")
    schema = schema_of(campaign)
    policy = session.get(PolicyVersion, campaign.policy_version_id)
    eval_set = session.get(EvalSet, campaign.eval_set_id)
    assert policy is not None
    assert eval_set is not None
    policy_info = {"id": policy.policy_id, "version": policy.version, "hash": policy.content_hash}
    query = (
        select(CampaignItem, Item, Response.text, Adjudication)
        .join(Item, Item.id == CampaignItem.item_id)
        .outerjoin(Response, Response.id == CampaignItem.response_id)
        .outerjoin(Adjudication, Adjudication.campaign_item_id == CampaignItem.id)
        .where(CampaignItem.campaign_id == campaign.id, CampaignItem.role.in_(QUEUE_ROLES))
        .order_by(CampaignItem.position)
    )
    rows = session.execute(query).all()
    fitted: dict[int, str] = {}
    labels_by_item: dict[int, list[LabelView]] = {}
    if method == "dawid_skene":
        frame = labels_frame(session, campaign)
        frame = frame[frame["key"].notna()]
        for r in frame.to_dict("records"):
            labels_by_item.setdefault(int(r["campaign_item_id"]), []).append(
                LabelView(
                    r["annotator"], r["behavior"], r["violation"], r["category"], r["rule_ids"]
                )
            )
        if len(frame):
            firsts = frame.drop_duplicates("campaign_item_id").to_dict("records")
            gold = {
                int(r["campaign_item_id"]): r["gold_key"]
                for r in firsts
                if isinstance(r["gold_key"], str)
            }
            keys = sorted(set(frame["key"]) | set(gold.values()))
            result = dawid_skene(
                frame.assign(item=frame["campaign_item_id"]),
                item="item",
                rater="annotator",
                value="key",
                gold=gold,
                labels=keys,
                source=f"campaign {campaign.name}",
            )
            fitted = {int(str(k)): str(v) for k, v in result.aggregated.items()}
    out = []
    for ci, item, response_text, adj in rows:
        final = ci.final
        source = (final or {}).get("source", "")
        if method == "dawid_skene" and ci.id in fitted and source not in ("gold", "adjudication"):
            final = details(
                schema,
                fitted[ci.id],
                [
                    lv
                    for lv in labels_by_item[ci.id]
                    if schema.decision_key(lv.behavior, lv.violation) == fitted[ci.id]
                ],
            )
            source = "dawid_skene"
        if not final:
            continue
        label = {
            "behavior": final.get("behavior"),
            "violation": final.get("violation"),
            "category": final.get("category"),
            "rule_ids": list(final.get("rule_ids") or []),
            "rationale": final.get("rationale"),
        }
        out.append(
            FinalRecord(
                id=item.external_id,
                eval_set=eval_set.name,
                messages=item.messages,
                response=response_text,
                label=label,
                source=source,
                n_labels=ci.n_labels,
                metadata={
                    "categories": item.categories,
                    "expected_behavior": item.expected_behavior,
                    "source": item.source,
                    "language": item.language,
                },
                policy=policy_info,
                policy_ambiguous=bool(adj and adj.policy_ambiguous),
                ambiguous_rule_ids=list(adj.ambiguous_rule_ids) if adj else [],
            )
        )
    return out


def gold_accuracy_frame(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[Any, str]]:
    """The labels on gold items and the gold map, as `annotator_accuracy` wants them."""
    gold_rows = frame[frame["gold_key"].notna() & frame["key"].notna()]
    gold: dict[Any, str] = {
        r["campaign_item_id"]: str(r["gold_key"]) for r in gold_rows.to_dict("records")
    }
    return gold_rows, gold


def item_count(session: Session, campaign: Campaign, *, role: str) -> int:
    return int(
        session.scalar(
            select(func.count(CampaignItem.id)).where(
                CampaignItem.campaign_id == campaign.id, CampaignItem.role == role
            )
        )
        or 0
    )


def reset_qualification(session: Session, campaign: Campaign, user: User) -> int:
    """Let an annotator take the qualification round again: their answers on it are removed."""
    ids = list(
        session.scalars(
            select(Assignment.id)
            .join(CampaignItem, CampaignItem.id == Assignment.campaign_item_id)
            .where(
                Assignment.campaign_id == campaign.id,
                Assignment.annotator_id == user.id,
                CampaignItem.role == "qualification",
            )
        )
    )
    if ids:
        session.execute(delete(Label).where(Label.assignment_id.in_(ids)))
        session.execute(delete(Assignment).where(Assignment.id.in_(ids)))
    session.execute(
        update(Qualification)
        .where(Qualification.campaign_id == campaign.id, Qualification.annotator_id == user.id)
        .values(status="pending", n=0, correct=0, score=None, finished_at=None)
    )
    return len(ids)


# -- frames for gold-set sampling and coverage -------------------------------------------------------
def items_frame(
    session: Session,
    *,
    set_name: str | None = None,
    run_name: str | None = None,
    campaign: Campaign | None = None,
) -> pd.DataFrame:
    """Items as ``item, category, categories, expected_behavior, source, language``: an eval
    set's, a run's (items with a response), or a campaign's queue. `category` is the first."""
    query = select(
        Item.external_id, Item.categories, Item.expected_behavior, Item.source, Item.language
    )
    if campaign is not None:
        query = query.join(CampaignItem, CampaignItem.item_id == Item.id).where(
            CampaignItem.campaign_id == campaign.id, CampaignItem.role.in_(QUEUE_ROLES)
        )
    elif run_name is not None:
        run = get_run(session, run_name)
        query = query.join(Response, Response.item_id == Item.id).where(
            Response.run_id == run.id, Response.error.is_(None)
        )
    else:
        query = query.where(Item.eval_set_id == get_eval_set(session, set_name or "").id)
    rows = session.execute(query.order_by(Item.id)).all()
    return pd.DataFrame(
        {
            "item": [r[0] for r in rows],
            "category": [r[1][0] if r[1] else None for r in rows],
            "categories": [list(r[1]) for r in rows],
            "expected_behavior": [r[2] for r in rows],
            "source": [r[3] for r in rows],
            "language": [r[4] for r in rows],
        }
    )


def verdicts_frame(
    session: Session, *, set_name: str | None = None, run_name: str | None = None
) -> pd.DataFrame:
    """Grader verdicts on a set's or a run's items: ``item, grader, behavior, confidence``."""
    query = select(
        Item.external_id,
        VerdictRecord.grader_id,
        VerdictRecord.grader_version,
        VerdictRecord.behavior,
        VerdictRecord.confidence,
    ).join(Item, Item.id == VerdictRecord.item_id)
    if run_name is not None:
        query = query.where(VerdictRecord.run_id == get_run(session, run_name).id)
    else:
        query = query.where(Item.eval_set_id == get_eval_set(session, set_name or "").id)
    rows = session.execute(query).all()
    frame = pd.DataFrame(
        {
            "item": [r[0] for r in rows],
            "grader": [f"{r[1]}@{r[2]}" for r in rows],
            "behavior": [r[3] for r in rows],
            "confidence": [r[4] for r in rows],
        }
    )
    # One verdict per item and grader: the latest one stored.
    return frame.drop_duplicates(["item", "grader"], keep="last").reset_index(drop=True)
