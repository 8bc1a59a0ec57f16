"""A workspace: a folder holding the configuration and (by default) the SQLite database.

`policylab init` creates `./.policylab/`; commands find it from the current folder upwards, or from
`--workspace` / `POLICYLAB_WORKSPACE`. A team points it at PostgreSQL with `--db postgresql+psycopg://...`.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from policylab.errors import PolicylabError
from policylab.store.db import make_engine

DEFAULT_DIR = ".policylab"
CONFIG_FILE = "config.toml"
ENV_VAR = "POLICYLAB_WORKSPACE"


class WorkspaceError(PolicylabError):
    pass


def _alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("policylab.store") / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


class Workspace:
    """An open workspace: its folder, its database, and sessions on it."""

    def __init__(self, path: Path, db_url: str):
        self.path = path
        self.db_url = db_url
        self._engine: Engine | None = None
        self._sessions: sessionmaker[Session] | None = None

    # -- creating and finding -------------------------------------------------------------------
    @classmethod
    def init(cls, path: str | Path = DEFAULT_DIR, *, db_url: str | None = None) -> Workspace:
        """Create a workspace (or upgrade an existing one) and bring its database to the latest schema."""
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        config = folder / CONFIG_FILE
        if config.exists():
            existing = cls.open(folder)
            if db_url and db_url != existing.db_url:
                raise WorkspaceError(
                    f"{config} already points at {existing.redacted_url}",
                    hint="edit `db` in that file to move the workspace to another database",
                )
            existing.migrate()
            return existing
        url = db_url or f"sqlite:///{(folder / 'policylab.db').resolve()}"
        config.write_text(f'# policylab workspace\ndb = "{url}"\n', encoding="utf-8")
        ws = cls(folder, url)
        ws.migrate()
        return ws

    @classmethod
    def open(cls, path: str | Path | None = None, *, migrate: bool = True) -> Workspace:
        """Open the workspace at `path`, or the one found from the environment or the current folder."""
        folder = Path(path) if path else cls.find()
        config = folder / CONFIG_FILE
        if not config.exists():
            raise WorkspaceError(
                f"no policylab workspace at {folder}",
                hint="run `policylab init` first, or pass --workspace PATH",
            )
        try:
            data = tomllib.loads(config.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise WorkspaceError(f"{config}: not valid TOML: {exc}") from exc
        url = data.get("db")
        if not isinstance(url, str):
            raise WorkspaceError(f'{config}: missing `db = "..."`', hint="give a database URL")
        url = os.path.expandvars(url)
        ws = cls(folder, url)
        if migrate:
            ws.migrate()
        return ws

    @staticmethod
    def find(start: Path | None = None) -> Path:
        env = os.environ.get(ENV_VAR)
        if env:
            return Path(env)
        here = (start or Path.cwd()).resolve()
        for folder in (here, *here.parents):
            if (folder / DEFAULT_DIR / CONFIG_FILE).exists():
                return folder / DEFAULT_DIR
        return here / DEFAULT_DIR

    # -- database -------------------------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(self.db_url)
        return self._engine

    @property
    def redacted_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.url.get_backend_name() == "sqlite"

    def migrate(self) -> None:
        """Bring the database to the latest schema (a no-op when it is already there)."""
        cfg = _alembic_config(self.db_url)
        # Areas add migrations on branches from 0001 until they are merged, so compare every head.
        heads = set(ScriptDirectory.from_config(cfg).get_heads())
        with self.engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
        if current == heads:
            return
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "heads")

    def schema_revision(self) -> str | None:
        """The database's schema revision (several heads joined by `+`), or None before any."""
        with self.engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_heads()
        return "+".join(sorted(current)) or None

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        if self._sessions is None:
            self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        with self._sessions() as session, session.begin():
            yield session

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
            self._sessions = None
