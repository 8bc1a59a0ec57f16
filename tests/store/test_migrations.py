"""The Alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL,
form one line of history, and can be undone."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from policylab.store.models import Base
from policylab.store.workspace import Workspace, _alembic_config


def test_one_head() -> None:
    script = ScriptDirectory.from_config(_alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1


def test_migrated_schema_matches_the_models(workspace: Workspace) -> None:
    with workspace.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_downgrade_to_base_and_up_again(workspace: Workspace) -> None:
    cfg = _alembic_config(workspace.db_url)
    with workspace.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    tables = set(inspect(workspace.engine).get_table_names()) - {"alembic_version"}
    assert tables == set()
    workspace.migrate()
    assert set(Base.metadata.tables) <= set(inspect(workspace.engine).get_table_names())
