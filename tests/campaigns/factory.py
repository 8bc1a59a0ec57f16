"""Builds small campaigns for the campaign, web and CLI tests: the mini policy, generated items,
an optional run with responses, and users with a cheap argon2 cost (the cost is read back from
each hash, so signing in stays fast too)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from argon2 import PasswordHasher

from policylab.campaigns.gold import GoldAnswer
from policylab.data.items import ItemRecord
from policylab.policy.loader import load_policy
from policylab.store.campaigns import CampaignSpec, create_campaign
from policylab.store.items import get_or_create_eval_set, insert_items
from policylab.store.models import Response, Run
from policylab.store.policies import add_policy_version
from policylab.store.users import create_user
from policylab.store.workspace import Workspace

MINI = Path(__file__).resolve().parents[1] / "policy" / "fixtures" / "mini" / "policy.yaml"
CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
PASSWORD = "correct horse battery"
CATEGORIES = [("CYB.1", "comply"), ("CYB.2", "refuse"), ("MED", "comply"), ("CYB", "refuse")]


@dataclass
class Built:
    name: str
    items: list[str]
    gold: dict[str, GoldAnswer] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)


def add_users(ws: Workspace, users: Sequence[tuple[str, Sequence[str]]]) -> dict[str, str]:
    with ws.session() as s:
        for name, roles in users:
            create_user(s, name, PASSWORD, roles, hasher=CHEAP)
    return {name: PASSWORD for name, _ in users}


def build_campaign(
    ws: Workspace,
    *,
    name: str = "c1",
    n_items: int = 12,
    k: int = 2,
    mode: str = "prompt",
    qualification_n: int = 0,
    qualification_threshold: float = 0.5,
    gold_share: float = 0.0,
    n_gold_answers: int = 0,
    reservation_seconds: int = 1800,
    agreement: str = "unanimous",
    max_per_annotator: int | None = None,
    users: Sequence[tuple[str, Sequence[str]]] = (),
    set_name: str = "s1",
) -> Built:
    """A campaign over `n_items` generated items; the first `n_gold_answers` have known answers
    (their category's expected behaviour; in response mode, a violation when it is `comply`)."""
    records = []
    for i in range(n_items):
        cat, expected = CATEGORIES[i % len(CATEGORIES)]
        records.append(
            ItemRecord.from_prompt(
                f"Question {i} about {cat}: please help with task number {i}.",
                id=f"it-{i:04d}",
                categories=[cat],
                expected_behavior=expected,
                source="generated" if i % 2 else "authored",
                language="en",
            )
        )
    gold = {
        r.id: GoldAnswer(
            id=r.id,
            behavior=r.expected_behavior or "refuse",
            violation=(r.expected_behavior == "comply") if mode == "response" else None,
            category=r.categories[0],
        )
        for r in records[:n_gold_answers]
    }
    loaded = load_policy(MINI)
    with ws.session() as s:
        row, _ = add_policy_version(s, loaded)
        es, _ = get_or_create_eval_set(s, set_name)
        ids = insert_items(s, es.id, records)
        run_name = None
        if mode == "response":
            run = Run(name=f"{name}-run", eval_set_id=es.id, model="echo", status="done")
            s.add(run)
            s.flush()
            for item_id in ids:
                s.add(Response(run_id=run.id, item_id=item_id, text=f"answer to {item_id}"))
            run_name = run.name
        spec = CampaignSpec(
            name=name,
            k=k,
            gold=gold,
            gold_share=gold_share,
            qualification_n=qualification_n,
            qualification_threshold=qualification_threshold,
            reservation_seconds=reservation_seconds,
            agreement=agreement,
            max_per_annotator=max_per_annotator,
        )
        create_campaign(
            s,
            spec,
            policy=row,
            set_name=None if run_name else set_name,
            run_name=run_name,
        )
    built = Built(name=name, items=[r.id for r in records], gold=gold)
    if users:
        built.users = add_users(ws, users)
    return built
