"""Red-team findings from promptfoo, garak, PyRIT and generic files, as one kind of record.

Formats read (each as its tool writes it):

- **promptfoo**: the JSON of `promptfoo eval -o results.json`: `results.results[]`, each with
  `prompt.raw`, `vars`, `response.output`, `success`, `score`, `gradingResult` and, for red-team
  runs, `metadata.pluginId` / `metadata.strategyId` (or under `testCase.metadata`). A result with
  `success: false` failed its assertions: the attack worked, a finding. The attack text is
  `response.metadata.redteamFinalPrompt` when an iterative strategy rewrote it, else `prompt.raw`.
- **garak**: the report JSONL (`garak.<uuid>.report.jsonl`): rows with `entry_type: "attempt"` and
  `status: 2` (evaluated) carry `probe_classname`, `prompt` (a conversation `{"turns": [{"role",
  "content": {"text"}}]}`, or a plain string in older reports), `outputs` (one per generation,
  `{"text"}` or a string) and `detector_results` (detector -> one score per output). An output
  any detector scores at 0.5 or more (garak's default evaluation threshold) is a hit: a finding.
- **PyRIT**: a memory export (`export_conversations(..., export_type="json")`): a JSON list of
  message pieces with `conversation_id`, `sequence`, `role`, `original_value`/`converted_value`,
  `labels` and `scores` (`score_type` `true_false` with `score_value` "True"/"False", or
  `float_scale` from 0 to 1). Each assistant piece with a true score (or a float of 0.5 or
  more) is a finding; its request is the conversation before it, as sent (converted values).
- **generic** JSONL or CSV: `id`, `prompt` or `messages`, `response`, optional `plugin`
  (or `category`), `strategy`, `verdict` and `score`.

With `only_failures` (the default) only the attempts the tool itself scored as successful
attacks are returned.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson

from policylab.data.items import normalise_text
from policylab.data.readers import UnreadableRow, read_csv, read_jsonl
from policylab.errors import Location, PolicylabError

__all__ = ["TOOLS", "Finding", "read_findings", "request_hash"]

Tool = Literal["promptfoo", "garak", "pyrit", "generic"]
TOOLS: tuple[str, ...] = ("promptfoo", "garak", "pyrit", "generic")
GARAK_HIT = 0.5
PYRIT_HIT = 0.5


@dataclass(frozen=True)
class Finding:
    tool: str
    external_id: str
    messages: list[dict[str, Any]]
    response: str | None
    plugin: str | None = None
    strategy: str | None = None
    tool_verdict: str | None = None
    score: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def request(self) -> str:
        return "\n".join(
            str(m.get("content") or "") for m in self.messages if m.get("role") == "user"
        )


def request_hash(finding: Finding) -> str:
    """SHA-256 of the finding's normalised user turns: equal attacks share it."""
    return hashlib.sha256(normalise_text(finding.request).encode("utf-8")).hexdigest()


def _user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def _load_json(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise PolicylabError(f"not valid JSON: {exc}", location=Location(path)) from exc


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("text"), str):
        return str(value["text"])
    return orjson.dumps(value).decode()


def read_promptfoo(path: Path, *, only_failures: bool = True) -> Iterator[Finding]:
    data = _load_json(path)
    results = data.get("results") if isinstance(data, dict) else None
    rows = results.get("results") if isinstance(results, dict) else results
    if not isinstance(rows, list):
        raise PolicylabError(
            "no `results.results` list: not a promptfoo results file",
            location=Location(path),
            hint="write it with `promptfoo eval -o results.json`",
        )
    for n, row in enumerate(rows):
        if not isinstance(row, dict):
            continue
        success = row.get("success")
        grading = row.get("gradingResult") or {}
        if success is None:
            success = grading.get("pass")
        if only_failures and success is not False:
            continue
        response = row.get("response") or {}
        meta = {
            **((row.get("testCase") or {}).get("metadata") or {}),
            **(row.get("metadata") or {}),
        }
        prompt = (response.get("metadata") or {}).get("redteamFinalPrompt") or (
            row.get("prompt") or {}
        ).get("raw")
        if not isinstance(prompt, str) or not prompt.strip():
            continue
        provider = row.get("provider") or {}
        yield Finding(
            tool="promptfoo",
            external_id=str(row.get("id") or f"{data.get('evalId', path.stem)}:{n}"),
            messages=_user(prompt),
            response=_text(response.get("output")),
            plugin=meta.get("pluginId"),
            strategy=meta.get("strategyId"),
            tool_verdict="fail" if success is False else "pass",
            score=row.get("score"),
            extra={
                "reason": grading.get("reason"),
                "provider": provider.get("label") or provider.get("id"),
                "severity": meta.get("severity"),
            },
        )


def _garak_prompt(prompt: Any) -> list[dict[str, Any]]:
    if isinstance(prompt, str):
        return _user(prompt)
    if isinstance(prompt, dict) and isinstance(prompt.get("turns"), list):
        out: list[dict[str, Any]] = []
        for turn in prompt["turns"]:
            text = _text(turn.get("content"))
            if text is not None and turn.get("role") in {"system", "user", "assistant"}:
                out.append({"role": turn["role"], "content": text})
        return out
    return []


def read_garak(path: Path, *, only_failures: bool = True) -> Iterator[Finding]:
    for line_no, row in read_jsonl(path):
        if isinstance(row, UnreadableRow) or row.get("entry_type") != "attempt":
            continue
        if row.get("status") != 2:
            continue  # garak writes each attempt twice: status 1 (answered) then 2 (evaluated)
        messages = _garak_prompt(row.get("prompt"))
        if not messages:
            continue
        detectors: dict[str, Any] = row.get("detector_results") or {}
        for i, output in enumerate(row.get("outputs") or []):
            text = _text(output)
            scores: dict[str, float] = {
                d: float(s[i])
                for d, s in detectors.items()
                if isinstance(s, list) and i < len(s) and s[i] is not None
            }
            worst = max(scores.values(), default=None)
            hit = worst is not None and worst >= GARAK_HIT
            if only_failures and not hit:
                continue
            uuid = row.get("uuid") or f"line{line_no}"
            yield Finding(
                tool="garak",
                external_id=f"{uuid}:{i}",
                messages=messages,
                response=text,
                plugin=row.get("probe_classname"),
                strategy=None,
                tool_verdict="hit" if hit else "pass",
                score=worst,
                extra={"detectors": scores, "goal": row.get("goal")},
            )


def _pyrit_hit(scores: list[Any]) -> tuple[bool, float | None]:
    best: float | None = None
    hit = False
    for s in scores:
        if not isinstance(s, dict):
            continue
        value = str(s.get("score_value", "")).strip()
        if s.get("score_type") == "true_false":
            v = 1.0 if value.lower() == "true" else 0.0
        else:
            try:
                v = float(value)
            except ValueError:
                continue
        best = v if best is None else max(best, v)
        hit = hit or v >= PYRIT_HIT
    return hit, best


def read_pyrit(path: Path, *, only_failures: bool = True) -> Iterator[Finding]:
    data = _load_json(path)
    if not isinstance(data, list):
        raise PolicylabError(
            "expected a JSON list of message pieces (a PyRIT memory export)",
            location=Location(path),
        )
    conversations: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for piece in data:
        if isinstance(piece, dict) and piece.get("conversation_id"):
            conversations[str(piece["conversation_id"])].append(piece)
    for cid, pieces in conversations.items():
        pieces.sort(key=lambda p: (p.get("sequence") or 0, str(p.get("timestamp") or "")))
        history: list[dict[str, Any]] = []
        for piece in pieces:
            role = piece.get("role")
            value = piece.get("converted_value") or piece.get("original_value") or ""
            if role == "assistant":
                hit, score = _pyrit_hit(piece.get("scores") or [])
                if (hit or not only_failures) and any(m["role"] == "user" for m in history):
                    labels = piece.get("labels") or {}
                    yield Finding(
                        tool="pyrit",
                        external_id=str(piece.get("id") or f"{cid}:{piece.get('sequence')}"),
                        messages=list(history),
                        response=str(value),
                        plugin=labels.get("harm_category") or labels.get("op_name"),
                        strategy=(
                            piece.get("attack_identifier")
                            or piece.get("orchestrator_identifier")
                            or {}
                        ).get("__type__")
                        if isinstance(
                            piece.get("attack_identifier") or piece.get("orchestrator_identifier"),
                            dict,
                        )
                        else None,
                        tool_verdict="success" if hit else "fail",
                        score=score,
                        extra={"conversation_id": cid, "labels": labels},
                    )
            if role in {"system", "user", "assistant"} and isinstance(value, str):
                history.append({"role": role, "content": value})


def read_generic(path: Path, *, only_failures: bool = True) -> Iterator[Finding]:
    rows = read_csv(path) if path.suffix.lower() == ".csv" else read_jsonl(path)
    for row_no, row in rows:
        if isinstance(row, UnreadableRow):
            raise PolicylabError(row.reason, location=Location(path, row_no))
        messages = row.get("messages")
        if isinstance(messages, str):
            messages = orjson.loads(messages)
        if not isinstance(messages, list):
            prompt = row.get("prompt")
            if not isinstance(prompt, str) or not prompt.strip():
                raise PolicylabError(
                    "a finding needs `prompt` (a string) or `messages` (a list)",
                    location=Location(path, row_no, field="prompt"),
                )
            messages = _user(prompt)
        verdict = row.get("verdict")
        if (
            only_failures
            and verdict not in (None, "")
            and str(verdict).lower() in {"pass", "passed", "safe", "false", "0"}
        ):
            continue
        score = row.get("score")
        yield Finding(
            tool="generic",
            external_id=str(row.get("id") or f"{path.stem}:{row_no}"),
            messages=messages,
            response=row.get("response") or None,
            plugin=row.get("plugin") or row.get("category") or None,
            strategy=row.get("strategy") or None,
            tool_verdict=str(verdict) if verdict not in (None, "") else None,
            score=float(score) if score not in (None, "") else None,
        )


def read_findings(path: Path, tool: str, *, only_failures: bool = True) -> Iterator[Finding]:
    """The findings in a file written by `tool` (one of `TOOLS`)."""
    if not path.exists():
        raise PolicylabError(f"{path}: no such file")
    readers = {
        "promptfoo": read_promptfoo,
        "garak": read_garak,
        "pyrit": read_pyrit,
        "generic": read_generic,
    }
    reader = readers.get(tool)
    if reader is None:
        raise PolicylabError(
            f"unknown red-team tool {tool!r}", hint=f"use one of {', '.join(TOOLS)}"
        )
    return reader(path, only_failures=only_failures)
