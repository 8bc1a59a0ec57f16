"""Migration 0003 creates exactly the tables the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from policylab.store.models import Base
from policylab.store.workspace import Workspace

MINE = {
    "users",
    "campaigns",
    "campaign_items",
    "assignments",
    "labels",
    "qualifications",
    "adjudications",
}


def test_migration_matches_the_models(workspace: Workspace) -> None:
    def include(
        obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
    ) -> bool:
        table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
        return table in MINE

    with workspace.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"include_object": include, "compare_type": True}
        )
        diffs = compare_metadata(context, Base.metadata)
    assert diffs == []
