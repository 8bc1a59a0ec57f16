"""The runner against the mock server, on SQLite and PostgreSQL: answers, faults, cache, resume."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from policylab.errors import PolicylabError
from policylab.models.base import SamplingParams
from policylab.models.openai_compat import OpenAICompatModel
from policylab.runs import Runner, RunOptions, RunSummary, run_model
from policylab.runs.store_link import ProcessLink
from policylab.store import runs as store_runs
from policylab.store.models import Item, Response, ResponseCache, Run
from policylab.store.runs import RunBusyError, open_run, run_lock, runs_folder
from policylab.store.workspace import Workspace

MakeSet = Callable[[Workspace, str, list[Any]], list[int]]


async def execute(
    ws: Workspace,
    server: Any,
    *,
    name: str = "r",
    items: str = "s",
    params: SamplingParams | None = None,
    timeout: float = 5.0,
    on_start: Callable[[Runner], None] | None = None,
    progress: Callable[[Any], None] | None = None,
    **options: Any,
) -> RunSummary:
    options.setdefault("backoff_base", 0.01)
    options.setdefault("concurrency", 8)
    opts = RunOptions(**options)
    model = OpenAICompatModel("mock", server.base_url, timeout=timeout, max_connections=8)
    try:
        return await run_model(
            ws,
            model,
            items=items,
            name=name,
            params=params,
            options=opts,
            on_start=on_start,
            progress=progress,
        )
    finally:
        await model.aclose()


def responses(ws: Workspace, run_name: str) -> dict[str, Response]:
    with ws.session() as session:
        rows = session.execute(
            select(Item.external_id, Response)
            .join(Response, Response.item_id == Item.id)
            .join(Run, Run.id == Response.run_id)
            .where(Run.name == run_name)
        )
        return dict(rows.all())


def prompts(n: int, tag: str = "q") -> list[str]:
    return [f"{tag} {i}" for i in range(n)]


# The store side on threads of the test process, or in its own child process.
LINKS = pytest.mark.parametrize("store_process", [False, True], ids=["threads", "process"])


@LINKS
async def test_every_item_is_answered_once(
    workspace: Workspace, mock_openai: Any, make_eval_set: MakeSet, store_process: bool
) -> None:
    make_eval_set(workspace, "s", prompts(50))
    summary = await execute(
        workspace, mock_openai, store_process=store_process, page_size=7, flush_every=5
    )
    c = summary.counts
    assert (summary.status, c.total, c.succeeded, c.failed, c.remaining) == (
        "finished",
        50,
        50,
        0,
        0,
    )
    assert (c.prompt_tokens, c.completion_tokens) == (100, 50 * 5)
    assert c.latency_p50_ms is not None
    assert c.latency_p95_ms is not None
    assert 0 < c.latency_p50_ms <= c.latency_p95_ms
    assert summary.session.requests == 50
    rows = responses(workspace, "r")
    assert sorted(rows) == sorted(f"i{n}" for n in range(50))
    assert rows["i3"].text == "Mock answer to: q 3"
    assert rows["i3"].messages == [{"role": "assistant", "content": "Mock answer to: q 3"}]
    assert all(r.attempts == 1 and r.error is None and not r.cached for r in rows.values())
    assert all(mock_openai.state.count(p) == 1 for p in prompts(50))
    assert not (runs_folder(workspace) / "run-1.journal").exists()
    with workspace.session() as session:
        run = session.scalars(select(Run)).one()
        assert run.status == "finished"
        assert run.finished_at is not None
        assert run.stats["counts"]["succeeded"] == 50


@LINKS
async def test_faults_end_with_exact_counts(
    workspace: Workspace, mock_openai: Any, make_eval_set: MakeSet, store_process: bool
) -> None:
    faulty = {
        "slow down [[fault:429*2]]": 3,
        "flaky [[fault:500*1]]": 2,
        "stuck [[fault:hang*1]]": 2,
        "broken [[fault:500]]": 3,
        "garbled [[fault:badjson]]": 3,
        "filtered [[fault:nochoices]]": 1,
        "rejected [[fault:400]]": 1,
    }
    bad_messages: list[Any] = [
        [{"role": "wizard", "content": "not a role"}],
        {"not": "a list"},
    ]
    make_eval_set(workspace, "s", [*prompts(10), *faulty, *bad_messages])
    summary = await execute(
        workspace, mock_openai, store_process=store_process, max_attempts=3, timeout=0.5
    )
    c = summary.counts
    assert (c.total, c.succeeded, c.failed, c.remaining) == (19, 13, 6, 0)
    assert c.errors == {
        "bad_messages": 2,
        "http_500": 1,
        "malformed_json": 1,
        "empty_choices": 1,
        "http_400": 1,
    }
    assert summary.status == "finished"
    assert sorted(summary.bad_items) == ["i17", "i18"]
    seen = mock_openai.state.snapshot()
    for prompt, requests in faulty.items():
        assert seen[prompt] == requests, prompt
    rows = responses(workspace, "r")
    assert (rows["i10"].attempts, rows["i10"].error) == (3, None)  # two 429s, then an answer
    assert (rows["i12"].attempts, rows["i12"].error) == (2, None)  # a timeout, then an answer
    assert rows["i13"].error is not None
    assert rows["i13"].error.startswith("http_500: HTTP 500: mock error 500 (after 3 attempts)")
    assert rows["i17"].error == (
        "bad_messages: item 'i17': messages[0].role: "
        "Input should be 'system', 'developer', 'user', 'assistant' or 'tool'"
    )
    assert rows["i18"].error is not None
    assert "must be a non-empty list" in rows["i18"].error
    # Retry-After: 1 was honoured between the 429s and the retries.
    times = mock_openai.state.times["slow down [[fault:429*2]]"]
    assert all(b - a >= 0.99 for a, b in itertools.pairwise(times))


async def test_a_fatal_error_for_every_item_stops_the_run_and_records_nothing(
    workspace: Workspace, mock_openai: Any, make_eval_set: MakeSet
) -> None:
    make_eval_set(workspace, "s", prompts(40))
    mock_openai.state.fail_all = 401
    summary = await execute(workspace, mock_openai, concurrency=4)
    c = summary.counts
    assert summary.status == "stopped"
    assert summary.stop_reason is not None
    assert summary.stop_reason.startswith("http_401")
    assert "check the API key" in summary.stop_reason
    assert (c.succeeded, c.failed, c.remaining) == (0, 0, 40)
    assert mock_openai.state.served <= 4  # only the requests already in flight
    mock_openai.state.fail_all = None
    again = await execute(workspace, mock_openai)
    assert (again.status, again.counts.succeeded, again.counts.remaining) == ("finished", 40, 0)


async def test_failed_items_are_asked_again_on_the_next_run_unless_kept(
    workspace: Workspace, mock_openai: Any, make_eval_set: MakeSet
) -> None:
    make_eval_set(workspace, "s", ["fine", "fails twice [[fault:500*2]]"])
    first = await execute(workspace, mock_openai, max_attempts=2)
    assert (first.counts.succeeded, first.counts.failed) == (1, 1)
    kept = await execute(workspace, mock_openai, max_attempts=2, retry_failed=False)
    assert (kept.counts.succeeded, kept.counts.failed, kept.session.requests) == (1, 1, 0)
    second = await execute(workspace, mock_openai, max_attempts=2)
    assert (second.counts.succeeded, second.counts.failed) == (2, 0)
    assert second.session.requests == 1
    seen = mock_openai.state.snapshot()
    assert (seen["fine"], seen["fails twice [[fault:500*2]]"]) == (1, 3)


@LINKS
async def test_the_cache_answers_a_conversation_asked_before(
    workspace: Workspace, mock_openai: Any, make_eval_set: MakeSet, store_process: bool
) -> None:
    make_eval_set(workspace, "s", prompts(12))
    first = await execute(workspace, mock_openai, store_process=store_process, name="a")
    assert first.counts.cached == 0
    again = await execute(workspace, mock_openai, store_process=store_process, name="b")
    assert (again.counts.succeeded, again.counts.cached, again.session.requests) == (12, 12, 0)
    assert responses(workspace, "b")["i4"].text == "Mock answer to: q 4"
    assert responses(workspace, "b")["i4"].attempts == 0
    assert all(mock_openai.state.count(p) == 1 for p in prompts(12))
    other_params = await execute(
        workspace,
        mock_openai,
        store_process=store_process,
        name="c",
        params=SamplingParams(temperature=0.5),
    )
    assert other_params.counts.cached == 0
    uncached = await execute(
        workspace, mock_openai, store_process=store_process, name="d", use_cache=False
    )
    assert (uncached.counts.cached, uncached.session.requests) == (0, 12)
    assert all(mock_openai.state.count(p) == 3 for p in prompts(12))
    with workspace.session() as session:
        assert len(session.scalars(select(ResponseCache)).all()) == 24


async def test_identical_conversations_in_one_run_are_asked_once(
    workspace: Workspace, mock_openai: Any, make_eval_set: MakeSet
) -> None:
    make_eval_set(workspace, "s", ["same", "same", "same", "other"])
    summary = await execute(workspace, mock_openai)
    assert (summary.counts.succeeded, summary.counts.cached) == (4, 2)
    assert mock_openai.state.count("same") == 1
    assert {r.text for r in responses(workspace, "r").values()} == {
        "Mock answer to: same",
        "Mock answer to: other",
    }


async def test_a_limit_scopes_the_run_and_a_later_run_extends_it(
    workspace: Workspace, mock_openai: Any, make_eval_set: MakeSet
) -> None:
    make_eval_set(workspace, "s", prompts(12))
    part = await execute(workspace, mock_openai, limit=5)
    assert (part.status, part.counts.total, part.counts.succeeded) == ("finished", 5, 5)
    assert sorted(responses(workspace, "r")) == [f"i{n}" for n in range(5)]
    rest = await execute(workspace, mock_openai)
    assert (rest.counts.total, rest.counts.succeeded, rest.session.requests) == (12, 12, 7)
    assert all(mock_openai.state.count(p) == 1 for p in prompts(12))


@LINKS
async def test_a_graceful_stop_leaves_nothing_in_doubt(
    workspace: Workspace, mock_openai: Any, make_eval_set: MakeSet, store_process: bool
) -> None:
    make_eval_set(workspace, "s", prompts(120))
    mock_openai.state.latency = 0.05
    runners: list[Runner] = []

    def stop_early(progress: Any) -> None:
        if progress.done >= 10 and runners:
            runners[0].request_stop()

    first = await execute(
        workspace,
        mock_openai,
        store_process=store_process,
        concurrency=2,
        on_start=runners.append,
        progress=stop_early,
    )
    assert first.status == "interrupted"
    assert 10 <= first.counts.succeeded < 120
    assert first.counts.remaining == 120 - first.counts.succeeded
    assert first.session.requests == first.counts.succeeded  # nothing sent without an answer
    mock_openai.state.latency = 0.005
    second = await execute(workspace, mock_openai, store_process=store_process)
    assert (second.status, second.counts.succeeded, second.in_doubt) == ("finished", 120, 0), second
    assert all(mock_openai.state.count(p) == 1 for p in prompts(120))


@pytest.mark.parametrize("action", ["retry", "skip"])
async def test_items_in_doubt_after_a_crash_are_reported_and_handled(
    workspace: Workspace, mock_openai: Any, make_eval_set: MakeSet, action: str
) -> None:
    ids = make_eval_set(workspace, "s", prompts(8))
    await execute(workspace, mock_openai, limit=3)
    # What a crash leaves: items 3 and 4 were sent (journal) with no stored answer; 0 was answered.
    journal = runs_folder(workspace) / "run-1.journal"
    journal.write_bytes(b"+%d\n+%d\n+%d\n-%d\n+%d\n" % (ids[0], ids[3], ids[5], ids[5], ids[4]))
    summary = await execute(workspace, mock_openai, in_doubt=action)
    assert summary.in_doubt == 2
    rows = responses(workspace, "r")
    if action == "retry":
        assert (summary.counts.succeeded, summary.counts.failed) == (8, 0)
        assert rows["i3"].error is None
    else:
        assert (summary.counts.succeeded, summary.counts.failed) == (6, 2)
        assert summary.counts.errors == {"in_doubt": 2}
        assert mock_openai.state.count("q 3") == mock_openai.state.count("q 4") == 0
        kept = await execute(workspace, mock_openai, in_doubt="skip")  # retry_failed keeps them
        assert (kept.counts.failed, kept.session.requests) == (2, 0)
        asked = await execute(workspace, mock_openai, in_doubt="retry")
        assert (asked.counts.succeeded, asked.session.requests) == (8, 2)
    assert all(mock_openai.state.count(p) == 1 for p in prompts(8))


async def test_a_run_resumes_only_with_its_own_settings(
    workspace: Workspace, mock_openai: Any, make_eval_set: MakeSet
) -> None:
    make_eval_set(workspace, "s", prompts(3))
    make_eval_set(workspace, "t", prompts(3, "t"))
    await execute(workspace, mock_openai)
    with pytest.raises(PolicylabError, match=r"run 'r' already exists with parameters"):
        await execute(workspace, mock_openai, params=SamplingParams(max_tokens=5))
    with pytest.raises(PolicylabError, match=r"items 's' \(not 't'\)"):
        await execute(workspace, mock_openai, items="t")
    with pytest.raises(PolicylabError, match=r"no eval set 'nope'"):
        await execute(workspace, mock_openai, items="nope")


async def test_one_process_at_a_time_per_run(
    workspace: Workspace, mock_openai: Any, make_eval_set: MakeSet
) -> None:
    make_eval_set(workspace, "s", prompts(3))
    with workspace.session() as session:
        run, _ = open_run(
            session, name="r", set_name="s", model=f"openai:mock@{mock_openai.base_url}", params={}
        )
    with run_lock(workspace, run), pytest.raises(RunBusyError, match="another process"):
        await execute(workspace, mock_openai)
    summary = await execute(workspace, mock_openai)
    assert summary.counts.succeeded == 3


async def test_requests_per_minute_are_limited(
    workspace: Workspace, mock_openai: Any, make_eval_set: MakeSet
) -> None:
    make_eval_set(workspace, "s", prompts(30))
    summary = await execute(workspace, mock_openai, rpm=1200)  # 20 a second, 20 at once
    assert summary.counts.succeeded == 30
    times = sorted(t for p in prompts(30) for t in mock_openai.state.times[p])
    assert times[-1] - times[0] >= 0.45  # 10 beyond the first second's 20: at least 0.5 s


async def test_tokens_and_cost_are_accounted(
    workspace: Workspace, mock_openai: Any, make_eval_set: MakeSet
) -> None:
    make_eval_set(workspace, "s", ["one two three", "four five"])
    summary = await execute(workspace, mock_openai, tpm=100_000, price_in=2.0, price_out=10.0)
    c = summary.counts
    assert (c.prompt_tokens, c.completion_tokens) == (5, 6 + 5)
    assert c.cost_usd == pytest.approx((5 * 2.0 + 11 * 10.0) / 1e6)
    assert summary.session.cost_usd == pytest.approx(c.cost_usd)


@LINKS
async def test_a_store_failure_stops_the_run_and_the_next_session_finishes_it(
    workspace: Workspace,
    mock_openai: Any,
    make_eval_set: MakeSet,
    store_process: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    make_eval_set(workspace, "s", prompts(300))
    mock_openai.state.latency = 0.02
    runners: list[Runner] = []
    broken: list[bool] = []

    def stored(runner: Runner) -> int:
        # Answered, minus those waiting for or in a write: what the store has acknowledged.
        return runner.progress.done - runner._unacked - len(runner._rows)

    def break_the_store(progress: Any) -> None:
        # Once some answers are stored (a slow machine may still be starting the store process
        # when the first 40 are answered), so that the first session ends part-way.
        if broken or not runners or runners[0]._link is None or stored(runners[0]) < 40:
            return
        broken.append(True)
        link = runners[0]._link
        if isinstance(link, ProcessLink):
            assert link._proc is not None
            link._proc.kill()  # the store process dies
        else:

            def fail(*_args: Any) -> None:
                raise OSError("disk full")

            monkeypatch.setattr(store_runs, "write_responses", fail)

    first = await execute(
        workspace,
        mock_openai,
        store_process=store_process,
        concurrency=4,
        flush_every=8,
        on_start=runners.append,
        progress=break_the_store,
    )
    assert first.status == "stopped"
    assert first.stop_reason is not None
    assert first.stop_reason.startswith("the answers could not be stored")
    assert ("store process" if store_process else "disk full") in first.stop_reason
    assert 0 < first.counts.succeeded < 300
    monkeypatch.undo()
    second = await execute(workspace, mock_openai, store_process=store_process)
    assert (second.status, second.counts.succeeded, second.counts.failed) == ("finished", 300, 0)
    assert second.in_doubt > 0  # the lost batch, known from the journal
    assert sorted(responses(workspace, "r")) == sorted(f"i{n}" for n in range(300))


async def test_a_duplicate_asks_for_itself_when_the_shared_answer_fails(
    workspace: Workspace, mock_openai: Any, make_eval_set: MakeSet
) -> None:
    make_eval_set(workspace, "s", ["twice [[fault:500*1]]", "twice [[fault:500*1]]"])
    summary = await execute(workspace, mock_openai, max_attempts=1)
    assert (summary.counts.succeeded, summary.counts.failed) == (1, 1)
    assert mock_openai.state.count("twice [[fault:500*1]]") == 2
    rows = responses(workspace, "r")
    assert rows["i0"].error is not None
    assert rows["i0"].error.startswith("http_500")
    assert (rows["i1"].error, rows["i1"].cached) == (None, False)
