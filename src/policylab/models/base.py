"""One async interface for every target model, and the errors it raises.

A target model answers one conversation per call. Failures are typed so the runner knows what to do:

- `RetryableError`: the same request may well succeed later. HTTP 429 (with the server's
  `Retry-After`), 408, 409 and 5xx; timeouts; connection errors (refused, reset, a body cut short);
  and a 200 whose JSON body does not parse (a proxy or server glitch: retrying costs at most
  `max_attempts` calls).
- `FatalModelError`: asking again gives the same answer. Other 4xx (a request the server rejects,
  such as a context that is too long), an empty `choices` list (typically a provider-side content
  filter), a message the model cannot take (an image for a text-only model), a replay file with no
  answer for the item. With `stops_run=True` every other item would fail the same way (401/403 bad
  key, 404 wrong model or URL, an HTML page where JSON was expected), so the runner stops and
  records nothing more.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeGuard, runtime_checkable

import orjson

from policylab.chat import ChatMessage


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """Sampling parameters; `None` leaves the model's default."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    stop: tuple[str, ...] | None = None

    def as_dict(self) -> dict[str, Any]:
        """The parameters that are set, in the OpenAI request's field names."""
        out: dict[str, Any] = {}
        if self.temperature is not None:
            out["temperature"] = self.temperature
        if self.top_p is not None:
            out["top_p"] = self.top_p
        if self.max_tokens is not None:
            out["max_tokens"] = self.max_tokens
        if self.seed is not None:
            out["seed"] = self.seed
        if self.stop:
            out["stop"] = list(self.stop)
        return out


@dataclass(slots=True)
class Completion:
    """A model's answer: its text, the assistant message as sent, and what it cost in tokens.

    An agent's answer also has a `transcript`: every message it produced after the prompt
    (assistant turns with their tool calls, tool results, scripted user replies), ending with
    `message`. The runner stores the transcript, or else `[message]`, as the response's messages.
    """

    text: str
    message: dict[str, Any]
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    raw: dict[str, Any] | None = field(default=None, repr=False)
    transcript: list[dict[str, Any]] | None = None


class ModelError(Exception):
    """A request to a target model failed; `kind` is a short class (`http_429`, `timeout`, …)."""

    retryable = False

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind
        self.message = message
        super().__init__(f"{kind}: {message}")


class RetryableError(ModelError):
    """The request may succeed if sent again, no sooner than `retry_after` seconds when given."""

    retryable = True

    def __init__(self, kind: str, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(kind, message)
        self.retry_after = retry_after


class FatalModelError(ModelError):
    """Sending the request again would fail the same way; `stops_run` when every item would."""

    def __init__(self, kind: str, message: str, *, stops_run: bool = False) -> None:
        super().__init__(kind, message)
        self.stops_run = stops_run


@runtime_checkable
class TargetModel(Protocol):
    """A model that answers conversations.

    `name` identifies the model and its configuration (never a key): it is part of the response
    cache key. `cacheable` is False for models whose answers are already stored (replay) or free to
    recompute (the echo test double). `item_id`, when the caller knows it, is the item's external
    id: replay looks answers up by it.
    """

    name: str
    cacheable: bool

    async def complete(
        self, messages: list[ChatMessage], *, params: SamplingParams, item_id: str | None = None
    ) -> Completion: ...

    async def aclose(self) -> None: ...


ToolSpec = dict[str, Any]
"""One entry of the OpenAI `tools` list: `{"type": "function", "function": {name, description,
parameters}}`."""


@runtime_checkable
class ToolCallingModel(TargetModel, Protocol):
    """A target model that can be offered tools (OpenAI function calling); `supports_tools` is True.

    Its answer's `message` may carry `tool_calls`; the caller runs them and asks again.
    """

    supports_tools: bool

    async def complete(
        self,
        messages: list[ChatMessage],
        *,
        params: SamplingParams,
        item_id: str | None = None,
        tools: Sequence[ToolSpec] | None = None,
    ) -> Completion: ...


def can_call_tools(model: TargetModel) -> TypeGuard[ToolCallingModel]:
    """Whether `model` takes `tools` (models that do not are asked without them)."""
    return getattr(model, "supports_tools", False) is True


def canonical_messages(messages: list[ChatMessage]) -> bytes:
    """A canonical JSON encoding of a conversation (sorted keys, unset fields left out)."""
    return orjson.dumps(
        [m.model_dump(exclude_none=True, mode="json") for m in messages],
        option=orjson.OPT_SORT_KEYS,
    )


def messages_digest(messages: list[ChatMessage]) -> str:
    """The sha256 of a conversation's canonical JSON: equal conversations, equal digests."""
    return hashlib.sha256(canonical_messages(messages)).hexdigest()
