"""Looking up eval sets by name: a module of its own so that a run (and its store process) can find
its set without importing `store.items`, which pulls in the importers and their libraries (~0.5 s)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from policylab.errors import PolicylabError
from policylab.store.models import EvalSet

__all__ = ["find_eval_set", "get_eval_set"]


def find_eval_set(session: Session, name: str) -> EvalSet | None:
    return session.scalars(select(EvalSet).where(EvalSet.name == name)).first()


def get_eval_set(session: Session, name: str) -> EvalSet:
    """The eval set called `name`, or an error listing the sets there are."""
    found = find_eval_set(session, name)
    if found is None:
        known = sorted(session.scalars(select(EvalSet.name)))
        raise PolicylabError(
            f"no eval set {name!r}",
            hint=f"sets: {', '.join(known) or 'none'}; "
            "import one with `policylab items import FILE --set NAME`",
        )
    return found
