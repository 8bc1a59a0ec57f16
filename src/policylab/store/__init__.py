"""The workspace: SQLAlchemy models and Alembic migrations; SQLite by default, PostgreSQL for a team."""

from policylab.store.workspace import Workspace, WorkspaceError

__all__ = ["Workspace", "WorkspaceError"]
