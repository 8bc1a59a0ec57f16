"""Storing and reading policy versions."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from policylab.errors import PolicylabError
from policylab.policy.loader import LoadedPolicy
from policylab.policy.schema import Policy
from policylab.store.models import PolicyVersion


def add_policy_version(
    session: Session, loaded: LoadedPolicy, *, message: str | None = None, author: str | None = None
) -> tuple[PolicyVersion, bool]:
    """Store a policy version. Returns the stored row and whether it is new.

    Adding the same content again is a no-op; adding different content under a version number already
    stored is an error, so a version number always means one content.
    """
    policy = loaded.policy
    digest = policy.content_hash
    same = session.scalars(
        select(PolicyVersion).where(
            PolicyVersion.policy_id == policy.id, PolicyVersion.content_hash == digest
        )
    ).first()
    if same is not None:
        return same, False
    clash = session.scalars(
        select(PolicyVersion).where(
            PolicyVersion.policy_id == policy.id, PolicyVersion.version == policy.version
        )
    ).first()
    if clash is not None:
        raise PolicylabError(
            f"policy {policy.id} version {policy.version} is already stored with different content "
            f"({clash.content_hash[:19]}…, added {clash.added_at:%Y-%m-%d %H:%M})",
            hint="bump `version:` in the policy file (and add a `changelog:` entry) before adding it",
        )
    row = PolicyVersion(
        policy_id=policy.id,
        version=policy.version,
        title=policy.title,
        content_hash=digest,
        content=policy.model_dump(mode="json"),
        sources=loaded.source_texts(),
        message=message,
        added_by=author,
    )
    session.add(row)
    session.flush()
    return row, True


def list_policy_versions(session: Session, policy_id: str | None = None) -> list[PolicyVersion]:
    """Stored versions, newest first."""
    query = select(PolicyVersion).order_by(PolicyVersion.added_at.desc(), PolicyVersion.id.desc())
    if policy_id:
        query = query.where(PolicyVersion.policy_id == policy_id)
    return list(session.scalars(query))


def get_policy_version(
    session: Session, policy_id: str, version: str | None = None
) -> PolicyVersion:
    """A stored version (the newest when `version` is None)."""
    query = select(PolicyVersion).where(PolicyVersion.policy_id == policy_id)
    if version:
        query = query.where(PolicyVersion.version == version)
    row = session.scalars(query.order_by(PolicyVersion.id.desc())).first()
    if row is None:
        known = sorted(set(session.scalars(select(PolicyVersion.policy_id))))
        what = f"{policy_id} {version}" if version else policy_id
        raise PolicylabError(
            f"no stored policy {what}",
            hint=f"stored policies: {', '.join(known) or 'none'}; add one with `policylab policy add`",
        )
    return row


def policy_of(row: PolicyVersion) -> Policy:
    return Policy.model_validate(row.content)
