from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

from policylab.errors import PolicylabError
from policylab.policy.loader import load_policy
from policylab.store.policies import (
    add_policy_version,
    get_policy_version,
    list_policy_versions,
    policy_of,
)
from policylab.store.workspace import Workspace, WorkspaceError

POLICY = """\
id: demo
version: {version}
title: Demo policy
scope: Everything a demo needs.
owners: [{{name: Ann Example}}]
categories:
  - id: VIO
    title: Violence
    description: Requests about violence.
    severity: high
    expected_behavior: {behavior}
"""


def write(tmp_path: Path, version: str = "1.0.0", behavior: str = "refuse") -> Path:
    path = tmp_path / f"policy-{version}-{behavior}.yaml"
    path.write_text(POLICY.format(version=version, behavior=behavior), encoding="utf-8")
    return path


def test_migrations_create_every_table(workspace: Workspace) -> None:
    tables = set(inspect(workspace.engine).get_table_names())
    assert {"policy_versions", "items", "runs", "responses", "verdicts"} <= tables
    assert workspace.schema_revision() is not None


def test_add_is_idempotent_and_versions_mean_one_content(
    workspace: Workspace, tmp_path: Path
) -> None:
    loaded = load_policy(write(tmp_path))
    with workspace.session() as s:
        row, created = add_policy_version(s, loaded, message="first")
        assert created
        assert row.content_hash == loaded.policy.content_hash
    with workspace.session() as s:
        _, created = add_policy_version(s, loaded)
        assert not created
    changed = load_policy(write(tmp_path, behavior="partial"))
    with workspace.session() as s, pytest.raises(PolicylabError, match="bump `version:`"):
        add_policy_version(s, changed)
    bumped = load_policy(write(tmp_path, version="1.1.0", behavior="partial"))
    with workspace.session() as s:
        add_policy_version(s, bumped)
    with workspace.session() as s:
        versions = [r.version for r in list_policy_versions(s, "demo")]
        assert versions == ["1.1.0", "1.0.0"]
        latest = policy_of(get_policy_version(s, "demo"))
        assert latest.categories[0].expected_behavior == "partial"
        assert policy_of(get_policy_version(s, "demo", "1.0.0")) == loaded.policy


def test_reopening_finds_the_same_database(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / ".policylab")
    again = Workspace.open(tmp_path / ".policylab")
    assert again.db_url == ws.db_url


def test_open_without_workspace_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="policylab init"):
        Workspace.open(tmp_path / "nowhere")


def test_find_searches_upwards(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Workspace.init(tmp_path / ".policylab")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    monkeypatch.delenv("POLICYLAB_WORKSPACE", raising=False)
    assert Workspace.find(deep) == tmp_path / ".policylab"
