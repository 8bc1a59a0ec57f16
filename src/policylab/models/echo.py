"""`echo`: a deterministic offline test double, not a language model.

It answers every conversation with its last user message, prefixed so nobody mistakes the answer
for a model's. Token counts are whitespace word counts, not a tokenizer's. Use it to try the
pipeline (import, run, grade, report) without a model or a network.
"""

from __future__ import annotations

from policylab.chat import ChatMessage
from policylab.models.base import Completion, SamplingParams

PREFIX = "[echo test double] "


class EchoModel:
    """Repeats the last user message; cuts to `max_tokens` words when set, like a length stop."""

    name = "echo"
    cacheable = False

    async def complete(
        self, messages: list[ChatMessage], *, params: SamplingParams, item_id: str | None = None
    ) -> Completion:
        last = next((m.text for m in reversed(messages) if m.role == "user"), "")
        words = last.split()
        finish = "stop"
        if params.max_tokens is not None and len(words) > params.max_tokens:
            words = words[: params.max_tokens]
            finish = "length"
        text = PREFIX + " ".join(words)
        return Completion(
            text=text,
            message={"role": "assistant", "content": text},
            finish_reason=finish,
            prompt_tokens=sum(len(m.text.split()) for m in messages),
            completion_tokens=len(words),
        )

    async def aclose(self) -> None:
        return None
