"""`replay:<file.jsonl>`: recorded responses, so existing transcripts can be graded without a model.

One JSON object per line, with the item's `id` and either
- `response`: the answer's text (and optionally `messages`, the prompt it answered), or
- `messages`: the whole conversation, whose last message is the assistant's answer.
Optional: `finish_reason`, `usage` (`prompt_tokens`, `completion_tokens`). A line with `error` and
no answer (as `policylab runs export --include-errors` writes) replays as a failed item.

An item is matched by its external id, or else by the digest of its prompt messages (so a transcript
without ids still finds its item). The file is indexed once (byte offsets only, so a large file
costs little memory) and read on demand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from policylab.chat import ChatMessage
from policylab.errors import InputError, Location, Problem
from policylab.models.base import Completion, FatalModelError, SamplingParams, messages_digest

MAX_PROBLEMS = 20


def _parse(record: dict[str, Any]) -> tuple[list[ChatMessage] | None, dict[str, Any] | str]:
    """The prompt messages (if recorded) and the assistant message, or the recorded error text.

    Raises ValueError when the line has neither an answer nor an error.
    """
    raw = record.get("messages")
    messages = None
    if raw is not None:
        if not isinstance(raw, list):
            raise ValueError("`messages` must be a list of chat messages")
        messages = [ChatMessage.model_validate(m) for m in raw]
    response = record.get("response")
    if response is not None:
        if not isinstance(response, str):
            raise ValueError("`response` must be a string")
        return messages, {"role": "assistant", "content": response}
    if messages and messages[-1].role == "assistant":
        answer = messages[-1].model_dump(exclude_none=True, mode="json")
        return messages[:-1], answer
    if isinstance(record.get("error"), str):
        return messages, str(record["error"])
    raise ValueError("needs `response`, or `messages` ending with an assistant message")


class ReplayModel:
    """Answers from a JSONL file of recorded responses."""

    cacheable = False

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).resolve()
        self.name = f"replay:{self.path}"
        self._by_id: dict[str, int] = {}
        self._by_digest: dict[str, int] = {}
        self._index()
        self._file = self.path.open("rb")

    def _index(self) -> None:
        if not self.path.is_file():
            raise InputError(
                [
                    Problem(
                        "no such file", Location(self.path), hint="give a JSONL file of responses"
                    )
                ],
                what="replay file",
            )
        problems: list[Problem] = []
        offset = 0
        with self.path.open("rb") as fh:
            for number, line in enumerate(fh, start=1):
                start, offset = offset, offset + len(line)
                if not line.strip():
                    continue
                where = Location(self.path, number)
                try:
                    record = orjson.loads(line)
                    if not isinstance(record, dict):
                        raise ValueError("each line must be a JSON object")
                    prompt, _ = _parse(record)
                except (orjson.JSONDecodeError, ValueError, ValidationError) as exc:
                    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    problems.append(Problem(detail, where))
                    if len(problems) >= MAX_PROBLEMS:
                        break
                    continue
                item = record.get("id")
                if item is not None:
                    key = str(item)
                    if key in self._by_id:
                        problems.append(Problem(f"id {key!r} appears twice", where))
                        continue
                    self._by_id[key] = start
                if prompt:
                    self._by_digest.setdefault(messages_digest(prompt), start)
                elif item is None:
                    problems.append(
                        Problem(
                            "a line needs an `id` or the prompt `messages` to match items", where
                        )
                    )
        if problems:
            raise InputError(problems, what=f"replay file {self.path}")

    def __len__(self) -> int:
        return max(len(self._by_id), len(self._by_digest))

    async def complete(
        self, messages: list[ChatMessage], *, params: SamplingParams, item_id: str | None = None
    ) -> Completion:
        offset = self._by_id.get(item_id) if item_id is not None else None
        if offset is None:
            offset = self._by_digest.get(messages_digest(messages))
        if offset is None:
            raise FatalModelError(
                "not_recorded",
                f"{self.path} has no response for item {item_id!r} "
                "(matched by `id`, then by the prompt messages)",
            )
        self._file.seek(offset)
        record = orjson.loads(self._file.readline())
        _, answer = _parse(record)
        if isinstance(answer, str):
            raise FatalModelError("recorded_error", f"the recorded run failed here: {answer}")
        usage = record.get("usage") or {}
        return Completion(
            text=ChatMessage.model_validate(answer).text,
            message=answer,
            finish_reason=record.get("finish_reason", "stop"),
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            raw=record,
        )

    async def aclose(self) -> None:
        self._file.close()
