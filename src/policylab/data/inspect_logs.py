"""Inspect AI evaluation logs (`.eval` archives and `.json` logs) imported as transcript items.

An `.eval` file is a zip archive of JSON files, as Inspect's `log/_recorders/eval.py` writes it:

- `header.json`: the log without its samples (`version`, `status`, `eval` with `task` and
  `model`, `results`, `stats`); a log still being written has `_journal/start.json` instead
  (`version`, `eval`, `plan`), and the oldest logs `start.json`;
- `samples/<id>_epoch_<n>.json`: one `EvalSample` each (`id`, `epoch`, `input`, `target`,
  `messages`, `output`, `scores`, `metadata`, `attachments`).

A `.json` log is the same `EvalLog` in one file, its samples under `samples`.

Each sample becomes one item tagged `transcript` and `inspect`:

- id: the sample id, suffixed `-epoch<n>` when the log holds more than one epoch;
- messages: the sample's `messages` in the OpenAI chat format. Text and images are kept; reasoning
  and other content (audio, video, documents, data) are left out and counted in the metadata;
  tool-call arguments (an object in Inspect) become JSON text; a tool error becomes the tool
  message's text; `attachment://` references are resolved from the sample's `attachments`. A
  sample without messages gives its `input` and the first choice of its `output`.
- metadata: `inspect` = task, model, log file, epoch, target, scores (value, answer,
  explanation) and the sample's own metadata.

Samples stored in Inspect's chunked layout (a folder per sample) are rejected with a hint.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from policylab.chat import (
    ChatMessage,
    ContentPart,
    FunctionCall,
    ImagePart,
    ImageURL,
    TextPart,
    ToolCall,
)
from policylab.data.importer import Accepted, ImportResult, Rejected
from policylab.data.items import TRANSCRIPT_TAG, ItemRecord
from policylab.data.transcripts import transcript_problems
from policylab.errors import InputError, Location, Problem

__all__ = ["INSPECT_TAG", "read_inspect_log"]

INSPECT_TAG = "inspect"
ATTACHMENT = "attachment://"
MAX_ENTRY_BYTES = 256 * 1024 * 1024
_SAMPLE = re.compile(r"^samples/(?P<name>[^/]+)\.json$")
_CHUNKED = re.compile(r"^samples/(?P<name>[^/]+)/sample\.json$")
_EPOCH = re.compile(r"_epoch_(\d+)$")
_DETAIL = {"auto", "low", "high"}


class _Skip(Exception):  # noqa: N818 (not an error: a sample the importer cannot use)
    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


def _resolve(value: Any, attachments: dict[str, str]) -> Any:
    if isinstance(value, str):
        if value.startswith(ATTACHMENT):
            return attachments.get(value[len(ATTACHMENT) :], value)
        return value
    if isinstance(value, list):
        return [_resolve(v, attachments) for v in value]
    if isinstance(value, dict):
        return {k: _resolve(v, attachments) for k, v in value.items()}
    return value


class _Converter:
    """One sample's messages from Inspect's format to the OpenAI chat format."""

    def __init__(self, attachments: dict[str, str]) -> None:
        self.attachments = attachments
        self.dropped: dict[str, int] = {}
        self.open_calls: list[str] = []

    def content(self, raw: Any) -> str | list[ContentPart]:
        raw = _resolve(raw, self.attachments)
        if raw is None:
            return ""
        if isinstance(raw, str):
            return raw
        parts: list[ContentPart] = []
        for part in raw:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text":
                parts.append(TextPart(text=str(part.get("text", ""))))
            elif kind == "image":
                detail = part.get("detail")
                parts.append(
                    ImagePart(
                        image_url=ImageURL(
                            url=str(part.get("image", "")),
                            detail=detail if detail in _DETAIL else None,
                        )
                    )
                )
            else:
                self.dropped[str(kind)] = self.dropped.get(str(kind), 0) + 1
        if all(isinstance(p, TextPart) for p in parts):
            return "\n".join(p.text for p in parts if isinstance(p, TextPart))
        return parts

    def message(self, raw: dict[str, Any]) -> ChatMessage:
        role = raw.get("role")
        content = self.content(raw.get("content"))
        if role in ("system", "user"):
            return ChatMessage(role=role, content=content)
        if role == "assistant":
            calls = [self.call(tc) for tc in raw.get("tool_calls") or []]
            self.open_calls += [c.id for c in calls]
            return ChatMessage(
                role="assistant",
                content=content or (None if calls else ""),
                tool_calls=calls or None,
            )
        if role == "tool":
            call_id = raw.get("tool_call_id") or (self.open_calls[0] if self.open_calls else None)
            if call_id in self.open_calls:
                self.open_calls.remove(call_id)
            error = raw.get("error")
            if isinstance(error, dict) and error.get("message"):
                note = f"error ({error.get('type', 'unknown')}): {error['message']}"
                content = f"{content}\n{note}" if isinstance(content, str) and content else note
            return ChatMessage(
                role="tool", content=content or "", tool_call_id=call_id, name=raw.get("function")
            )
        raise _Skip("invalid message", f"a message with role {role!r}")

    def call(self, raw: dict[str, Any]) -> ToolCall:
        function = raw.get("function")
        name = function.get("name") if isinstance(function, dict) else function
        arguments = _resolve(raw.get("arguments", {}), self.attachments)
        if isinstance(function, dict) and "arguments" in function:
            arguments = function["arguments"]
        text = arguments if isinstance(arguments, str) else orjson.dumps(arguments).decode()
        return ToolCall(
            id=str(raw.get("id") or ""), function=FunctionCall(name=str(name or ""), arguments=text)
        )


def _messages(sample: dict[str, Any], converter: _Converter) -> list[ChatMessage]:
    raw = sample.get("messages") or []
    if not raw:
        given = sample.get("input")
        raw = [{"role": "user", "content": given}] if isinstance(given, str) else list(given or [])
        choices = (sample.get("output") or {}).get("choices") or []
        if choices and isinstance(choices[0].get("message"), dict):
            raw.append(choices[0]["message"])
    if not raw:
        raise _Skip("empty sample", "the sample has no messages, input or output")
    return [converter.message(m) for m in raw]


def _scores(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        return {}
    out: dict[str, Any] = {}
    for name, score in raw.items():
        if isinstance(score, dict):
            out[name] = {k: score.get(k) for k in ("value", "answer", "explanation") if k in score}
    return out


def _item(
    sample: dict[str, Any], header: dict[str, Any], *, file: Path, epochs: bool
) -> ItemRecord:
    attachments = {str(k): str(v) for k, v in (sample.get("attachments") or {}).items()}
    converter = _Converter(attachments)
    messages = _messages(sample, converter)
    problems = transcript_problems(messages)
    if problems:
        raise _Skip("invalid transcript", "; ".join(problems))
    spec = header.get("eval") or {}
    epoch = int(sample.get("epoch") or 1)
    sample_id = str(sample.get("id"))
    target = sample.get("target")
    info: dict[str, Any] = {
        "task": spec.get("task"),
        "model": spec.get("model"),
        "log": file.name,
        "status": header.get("status"),
        "epoch": epoch,
        "target": target if isinstance(target, str | list) else None,
        "scores": _scores(sample.get("scores")),
        "metadata": sample.get("metadata") or {},
    }
    if converter.dropped:
        info["dropped_content"] = converter.dropped
    try:
        return ItemRecord(
            id=f"{sample_id}-epoch{epoch}" if epochs else sample_id,
            messages=messages,
            source=f"inspect:{spec.get('task') or file.stem}",
            tags=[TRANSCRIPT_TAG, INSPECT_TAG],
            metadata={"inspect": orjson.loads(orjson.dumps(info, default=str))},
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        raise _Skip("invalid item", f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None


def _epoch_of(name: str) -> str | None:
    """`2` for `samples/q1_epoch_2.json` or `samples/q1_epoch_2/sample.json`."""
    base = name.removesuffix("/sample.json").removesuffix(".json").rsplit("/", 1)[-1]
    found = _EPOCH.search(base)
    return found.group(1) if found else None


def _read_json(archive: zipfile.ZipFile, name: str) -> Any:
    info = archive.getinfo(name)
    if info.file_size > MAX_ENTRY_BYTES:
        raise _Skip("too large", f"{name} is {info.file_size:,} bytes unpacked")
    return orjson.loads(archive.read(name))


def _eval_archive(file: Path) -> Iterator[tuple[str, dict[str, Any] | _Skip, dict[str, Any], bool]]:
    try:
        archive = zipfile.ZipFile(file)
    except zipfile.BadZipFile as exc:
        raise InputError(
            [
                Problem(
                    f"not an Inspect .eval archive (a zip file): {exc}",
                    Location(file),
                    "give a .eval or .json log",
                )
            ],
            what="Inspect log",
        ) from exc
    with archive:
        names = archive.namelist()
        header: dict[str, Any] = {}
        for candidate in ("header.json", "_journal/start.json", "start.json"):
            if candidate in names:
                header = _read_json(archive, candidate)
                break
        else:
            raise InputError(
                [
                    Problem(
                        "no header.json or _journal/start.json in the archive",
                        Location(file),
                        "is this an Inspect log?",
                    )
                ],
                what="Inspect log",
            )
        samples = sorted(n for n in names if _SAMPLE.match(n))
        chunked = sorted(n for n in names if _CHUNKED.match(n))
        epochs = len({_epoch_of(n) for n in samples + chunked}) > 1
        for name in samples:
            try:
                yield name, _read_json(archive, name), header, epochs
            except (orjson.JSONDecodeError, _Skip) as exc:
                yield (
                    name,
                    exc if isinstance(exc, _Skip) else _Skip("invalid JSON", f"{name}: {exc}"),
                    header,
                    epochs,
                )
        for name in chunked:
            yield (
                name,
                _Skip(
                    "chunked sample",
                    f"{name.rsplit('/', 1)[0]} is stored in Inspect's chunked layout, which this "
                    "importer does not read: convert the log with `inspect log convert --to json` "
                    "and import the .json log",
                ),
                header,
                epochs,
            )


def _json_log(file: Path) -> Iterator[tuple[str, dict[str, Any] | _Skip, dict[str, Any], bool]]:
    try:
        log = orjson.loads(file.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise InputError(
            [Problem(f"not JSON: {exc}", Location(file), None)], what="Inspect log"
        ) from exc
    if not isinstance(log, dict) or "eval" not in log:
        raise InputError(
            [
                Problem(
                    "not an Inspect log: no `eval` section",
                    Location(file),
                    "give a .eval or .json log",
                )
            ],
            what="Inspect log",
        )
    samples = log.get("samples") or []
    epochs = len({s.get("epoch", 1) for s in samples if isinstance(s, dict)}) > 1
    for i, sample in enumerate(samples):
        yield (
            f"samples[{i}]",
            sample if isinstance(sample, dict) else _Skip("invalid sample", "not an object"),
            log,
            epochs,
        )


def read_inspect_log(path: str | Path) -> Iterator[ImportResult]:
    """Each sample of an Inspect log as an accepted item or a rejected row (numbered from 1)."""
    file = Path(path)
    if not file.is_file():
        raise InputError(
            [Problem("no such file", Location(file), "check the path")], what="Inspect log"
        )
    entries = _json_log(file) if file.suffix.lower() == ".json" else _eval_archive(file)
    seen: set[str] = set()
    for row, (name, sample, header, epochs) in enumerate(entries, start=1):
        if isinstance(sample, _Skip):
            yield Rejected(row, sample.kind, sample.reason, {"entry": name})
            continue
        try:
            item = _item(sample, header, file=file, epochs=epochs)
        except _Skip as exc:
            yield Rejected(row, exc.kind, f"{name}: {exc.reason}", {"entry": name})
            continue
        if item.id in seen:
            yield Rejected(
                row, "duplicate id", f"{name}: sample id {item.id!r} appears twice", {"entry": name}
            )
            continue
        seen.add(item.id)
        yield Accepted(row, item, {"entry": name})
