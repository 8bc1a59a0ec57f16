"""The store side of a run: pages, cache keys, writes, and the store process's protocol."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy import select

from policylab.store.models import Response, ResponseCache, Run
from policylab.store.runs import FRAME_HEADER, LinkConfig, StoreSide, cache_key, open_run, serve
from policylab.store.workspace import Workspace

MakeSet = Callable[[Workspace, str, list[Any]], list[int]]


def test_cache_keys_ignore_key_order_and_see_every_parameter() -> None:
    a = [{"role": "user", "content": "hi"}]
    b = [{"content": "hi", "role": "user"}]
    assert cache_key("m", {"temperature": 0}, a) == cache_key("m", {"temperature": 0}, b)
    assert cache_key("m", {"temperature": 0}, a) != cache_key("m", {"temperature": 1}, a)
    assert cache_key("m", {}, a) != cache_key("n", {}, a)
    assert cache_key("m", {}, a) != cache_key("m", {}, [{"role": "user", "content": "hi "}])
    assert len(cache_key("m", {}, a)) == 64


def _side(
    ws: Workspace, make_eval_set: MakeSet, *, use_cache: bool = True
) -> tuple[StoreSide, list[int]]:
    ids = make_eval_set(
        ws,
        "s",
        [
            "first",
            [{"role": "user", "content": [{"type": "text", "text": "second"}]}],
            [{"role": "tool", "content": "no call id"}],
            "fourth",
        ],
    )
    with ws.session() as session:
        run, _ = open_run(session, name="r", set_name="s", model="m", params={})
        run_id, set_id = run.id, run.eval_set_id
    config = LinkConfig(run_id, set_id, "m", {}, use_cache, page_size=3)
    return StoreSide(ws.engine, config), ids


def test_pages_validate_items_and_carry_cache_hits(
    workspace: Workspace, make_eval_set: MakeSet
) -> None:
    side, _ = _side(workspace, make_eval_set)
    first_key = cache_key("m", {}, [{"role": "user", "content": "first"}])
    side.write([], [[first_key, "m", {"text": "cached!"}]])
    page = side.page(0, None)
    assert page is not None
    assert [w[1] for w in page["works"]] == ["i0", "i1"]
    assert page["works"][0][2:] == [[{"role": "user", "content": "first"}], first_key, 5]
    assert page["works"][1][2] == [
        {"role": "user", "content": [{"type": "text", "text": "second"}]}
    ]
    assert page["bad"] == [
        [
            page["bad"][0][0],
            "i2",
            "bad_messages: item 'i2': messages[0]: Value error, a tool message needs "
            "tool_call_id: the id of the call it answers",
        ]
    ]
    assert page["hits"] == {first_key: {"text": "cached!"}}
    rest = side.page(page["after"], None)
    assert rest is not None
    assert [w[1] for w in rest["works"]] == ["i3"]
    assert side.page(rest["after"], None) is None


def test_writes_store_rows_and_pages_skip_answered_items(
    workspace: Workspace, make_eval_set: MakeSet
) -> None:
    side, _ = _side(workspace, make_eval_set, use_cache=False)
    page = side.page(0, None)
    assert page is not None
    item_id = page["works"][0][0]
    assert page["works"][0][3] is None  # no cache key without the cache
    message = {"role": "assistant", "content": "hello"}
    side.write([[item_id, [message], "hello", "stop", None, 12.5, 3, 1, 0.001, 1, False]], [])
    with workspace.session() as session:
        row = session.scalars(select(Response)).one()
        assert (row.item_id, row.text, row.latency_ms, row.cost_usd) == (
            item_id,
            "hello",
            12.5,
            0.001,
        )
        assert row.messages == [message]
    again = side.page(0, None)
    assert again is not None
    assert item_id not in [w[0] for w in again["works"]]


def _frame(message: list[Any]) -> bytes:
    blob = orjson.dumps(message)
    return FRAME_HEADER.pack(len(blob)) + blob


def _replies(data: bytes) -> list[Any]:
    out, stream = [], io.BytesIO(data)
    while header := stream.read(FRAME_HEADER.size):
        out.append(orjson.loads(stream.read(FRAME_HEADER.unpack(header)[0])))
    return out


def test_the_store_process_speaks_its_protocol(
    workspace: Workspace, make_eval_set: MakeSet
) -> None:
    side, ids = _side(workspace, make_eval_set)
    config = side.config
    inp = io.BytesIO(
        _frame(["init", workspace.db_url, config.as_dict()])
        + _frame(["page", 0, None])
        + _frame(
            [
                "write",
                [[ids[0], [], None, None, "http_500: boom", None, None, None, None, 6, False]],
                [],
            ]
        )
        + _frame(
            ["write", [[ids[0], [], None, None, "again", None, None, None, None, 1, False]], []]
        )
        + _frame(["close"])
    )
    out = io.BytesIO()
    serve(inp, out)
    replies = _replies(out.getvalue())
    assert [r[0] for r in replies] == ["ready", "page", "written", "error"]
    assert [w[1] for w in replies[1][1]["works"]] == ["i0", "i1"]
    assert "IntegrityError" in replies[3][1]  # a second row for one item is refused, loudly
    with workspace.session() as session:
        assert session.scalars(select(Response.error)).all() == ["http_500: boom"]
        assert session.scalars(select(ResponseCache)).all() == []
        assert session.scalars(select(Run.name)).all() == ["r"]


def test_the_store_process_stops_quietly_when_its_input_ends(
    workspace: Workspace, make_eval_set: MakeSet
) -> None:
    side, ids = _side(workspace, make_eval_set)
    row = [ids[0], [], "x", "stop", None, None, None, None, None, 1, False]
    whole = _frame(["init", workspace.db_url, side.config.as_dict()]) + _frame(["write", [row], []])
    cut = _frame(["write", [[ids[1], [], "y", "stop", None, None, None, None, None, 1, False]], []])
    out = io.BytesIO()
    serve(io.BytesIO(whole + cut[:-3]), out)  # the parent died mid-message
    assert [r[0] for r in _replies(out.getvalue())] == ["ready", "written"]
    with workspace.session() as session:
        assert session.scalars(select(Response.text)).all() == ["x"]
