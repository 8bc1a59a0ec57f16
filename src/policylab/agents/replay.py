"""`recorded` and `recorded:<file>`: replay targets that reproduce recorded agent transcripts.

A recorded transcript is a conversation whose agent part (from its first assistant message on:
tool calls, tool results, the final answer) was produced elsewhere. Replaying it stores that part
as the run's response, exactly as recorded, so it is graded like a live agent's episode.

- `recorded`: the item itself is the transcript (imported with `policylab items import
  --format transcript|inspect`): its messages before the first assistant turn are the request,
  the rest is the answer.
- `recorded:<file>`: transcripts in a JSONL file (the transcript import format) or an Inspect
  log, matched to items by id; the item's conversation must be the transcript's request.
"""

from __future__ import annotations

from pathlib import Path

from policylab.chat import ChatMessage
from policylab.data.importer import Accepted
from policylab.data.inspect_logs import read_inspect_log
from policylab.data.transcripts import read_transcripts
from policylab.errors import InputError, Location, Problem
from policylab.models.base import Completion, FatalModelError, SamplingParams, messages_digest

__all__ = ["RecordedModel", "split_transcript"]


def split_transcript(messages: list[ChatMessage]) -> tuple[list[ChatMessage], list[ChatMessage]]:
    """The request (before the first assistant message) and the agent part (the rest)."""
    first = next((i for i, m in enumerate(messages) if m.role == "assistant"), None)
    if first is None:
        return list(messages), []
    return list(messages[:first]), list(messages[first:])


class RecordedModel:
    """Answers each item with its recorded agent part (see the module docstring)."""

    cacheable = False

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path).resolve() if path is not None else None
        self.name = f"recorded:{self.path}" if self.path else "recorded"
        self._by_id: dict[str, list[ChatMessage]] = {}
        self._by_digest: dict[str, list[ChatMessage]] = {}
        if self.path is not None:
            self._load(self.path)

    def _load(self, path: Path) -> None:
        inspect = path.suffix.lower() in (".eval", ".json")
        results = read_inspect_log(path) if inspect else read_transcripts(path)
        problems: list[Problem] = []
        for result in results:
            if not isinstance(result, Accepted):
                problems.append(Problem(result.reason, Location(path, result.row)))
                continue
            messages = list(result.item.messages)
            self._by_id[result.item.id] = messages
            request, _ = split_transcript(messages)
            self._by_digest.setdefault(messages_digest(request), messages)
        if problems:
            raise InputError(problems, what=f"recorded transcripts {path}")

    async def complete(
        self, messages: list[ChatMessage], *, params: SamplingParams, item_id: str | None = None
    ) -> Completion:
        if self.path is None:
            recorded = list(messages)
        else:
            found = self._by_id.get(item_id or "") or self._by_digest.get(messages_digest(messages))
            if found is None:
                raise FatalModelError(
                    "not_recorded", f"{self.path} has no transcript for item {item_id!r}"
                )
            recorded = found
        request, agent = split_transcript(recorded)
        if not agent:
            raise FatalModelError(
                "not_a_transcript",
                f"item {item_id!r} has no assistant turn to replay: import finished transcripts "
                "(`--format transcript` or `--format inspect`), or run a model on it",
            )
        if self.path is not None and messages_digest(request) != messages_digest(messages):
            raise FatalModelError(
                "different_request",
                f"item {item_id!r}: the recorded transcript answers a different conversation",
            )
        final = next(m for m in reversed(agent) if m.role == "assistant")
        return Completion(
            text=final.text,
            message=final.model_dump(mode="json", exclude_none=True),
            finish_reason="stop",
            transcript=[m.model_dump(mode="json", exclude_none=True) for m in agent],
        )

    async def aclose(self) -> None:
        return None
