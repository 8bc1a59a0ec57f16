"""A policy-conditioned LLM judge over any OpenAI-compatible chat endpoint.

The system message is the policy compiled into a grader prompt (`compile_grader_prompt`, scoped to
the sample's category when it has one); the user message fences the conversation and the response
with markers carrying a random code per call (`templates/graders/judge_user.md.j2`), so text inside
the response cannot close the fence and speak as the grader. The reply must be one JSON object
matching the contract; `judge_reply.parse_judge_reply` takes only the judge's own final object and
rejects echoes. Anything unusable becomes a verdict with `error` set, never a behaviour.

`format="harmony"` is for gpt-oss-safeguard: the conversation is built with `openai-harmony`'s
message types (system content with the reasoning effort, the policy as developer instructions, the
content as the user turn), as the gpt-oss-safeguard guide describes, then sent in chat format (the
policy as the system message, `reasoning_effort` in the body), which servers such as vLLM and Ollama
render to harmony tokens themselves; harmony's tokenizer needs a vocabulary file that cannot be
fetched offline. The reply's `final` channel is read whether the server parsed it or sent it raw.

Transport errors that may pass (timeouts, 429, 5xx) are retried with exponential backoff, honouring
`Retry-After`; other failures give error verdicts.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import secrets
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from policylab.chat import ChatMessage
from policylab.errors import PolicylabError
from policylab.graders._expect import expected_behavior, violates
from policylab.graders._render import render
from policylab.graders.base import AsyncGrader, Sample, Verdict, error_verdict, grader
from policylab.graders.judge_reply import JudgeReplyError, parse_judge_reply
from policylab.models.base import (
    Completion,
    ModelError,
    RetryableError,
    SamplingParams,
    TargetModel,
)
from policylab.policy.compile.grader import compile_grader_prompt
from policylab.policy.schema import Policy

__all__ = ["LLMJudge", "build_messages"]

log = logging.getLogger(__name__)

Format = Literal["chat", "harmony"]
Effort = Literal["low", "medium", "high"]


def build_messages(
    sample: Sample,
    *,
    system_prompt: str,
    nonce: str,
    format: Format = "chat",
    effort: Effort = "low",
) -> list[ChatMessage]:
    """The judge's messages for one sample: the policy prompt, then the fenced content."""
    conversation = [(m.role, m.text) for m in sample.messages]
    user_text = render(
        "judge_user.md.j2", nonce=nonce, conversation=conversation, response=sample.response
    )
    if format == "harmony":
        return _harmony_messages(system_prompt, user_text, effort)
    return [
        ChatMessage(role="system", content=system_prompt),
        ChatMessage(role="user", content=user_text),
    ]


def _harmony_messages(policy_prompt: str, user_text: str, effort: Effort) -> list[ChatMessage]:
    import openai_harmony as h

    conversation = h.Conversation.from_messages(
        [
            h.Message.from_role_and_content(
                h.Role.SYSTEM,
                h.SystemContent.new().with_reasoning_effort(
                    {
                        "low": h.ReasoningEffort.LOW,
                        "medium": h.ReasoningEffort.MEDIUM,
                        "high": h.ReasoningEffort.HIGH,
                    }[effort]
                ),
            ),
            h.Message.from_role_and_content(
                h.Role.DEVELOPER, h.DeveloperContent.new().with_instructions(policy_prompt)
            ),
            h.Message.from_role_and_content(h.Role.USER, user_text),
        ]
    )
    # Chat-format servers take the developer instructions as the system message and build the
    # harmony system message (model identity, reasoning effort, channels) themselves.
    out: list[ChatMessage] = []
    for message in conversation.messages:
        if message.author.role == h.Role.DEVELOPER:
            text = "".join(getattr(c, "instructions", "") or "" for c in message.content)
            out.append(ChatMessage(role="system", content=text))
        elif message.author.role == h.Role.USER:
            text = "".join(getattr(c, "text", "") for c in message.content)
            out.append(ChatMessage(role="user", content=text))
    return out


@grader("llm")
class LLMJudge(AsyncGrader):
    """An LLM judge. `model` is a spec (`openai:<model>[@<base_url>]`) or a `TargetModel`.

    Parameters: `policy` (without one, a generic behaviour prompt is used and violation is decided
    from the sample's expected behaviour); `format` (`chat`, or `harmony` for gpt-oss-safeguard);
    `reasoning_effort` (harmony only); `json_mode` (ask the server for a JSON object);
    `temperature`, `max_tokens`; `max_attempts` per sample on transport errors; `concurrency`
    (requests in flight); `timeout` per request; `api_key_env` (the variable holding the key).
    """

    id: ClassVar[str] = "llm"
    version: ClassVar[str] = "1"
    runtime_params: ClassVar[frozenset[str]] = frozenset({"concurrency", "timeout", "api_key_env"})

    def __init__(
        self,
        model: str | TargetModel,
        policy: Policy | None = None,
        *,
        format: Format = "chat",
        reasoning_effort: Effort = "low",
        json_mode: bool = True,
        temperature: float = 0.0,
        max_tokens: int = 1024,
        max_attempts: int = 4,
        concurrency: int = 8,
        timeout: float = 120.0,
        api_key_env: str | None = None,
    ) -> None:
        if format not in ("chat", "harmony"):
            raise PolicylabError(f"unknown judge format {format!r}", hint="use chat or harmony")
        if max_attempts < 1 or concurrency < 1:
            raise PolicylabError("max_attempts and concurrency must be at least 1")
        self.model = model
        self.policy = policy
        self.format = format
        self.reasoning_effort = reasoning_effort
        self.json_mode = json_mode
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.max_attempts = max_attempts
        self.concurrency = concurrency
        self.timeout = timeout
        self.api_key_env = api_key_env
        self._client: TargetModel | None = None if isinstance(model, str) else model
        self._prompts: dict[str | None, str] = {}
        self.backoff_base = 0.5
        """Seconds before the first retry (doubled each time, with jitter); tests shorten it."""

    # -- setup -----------------------------------------------------------------------------------
    @property
    def model_name(self) -> str:
        return self.model if isinstance(self.model, str) else self.model.name

    def _open_client(self) -> TargetModel:
        if self._client is not None:
            return self._client
        from policylab.models.openai_compat import DEFAULT_BASE_URL, OpenAICompatModel
        from policylab.models.registry import DEFAULT_KEY_ENV, parse_spec

        assert isinstance(self.model, str)
        spec = parse_spec(self.model)
        if spec.kind != "openai":
            raise PolicylabError(
                f"judge model {self.model!r}: the LLM judge needs an OpenAI-compatible endpoint",
                hint="use openai:<model>[@<base_url>], e.g. openai:gpt-oss-safeguard-20b@http://localhost:8000/v1",
            )
        key_env = self.api_key_env or DEFAULT_KEY_ENV
        key = os.environ.get(key_env)
        base_url = spec.base_url or DEFAULT_BASE_URL
        if not key and (self.api_key_env or base_url == DEFAULT_BASE_URL):
            raise PolicylabError(
                f"judge model {self.model}: the API key variable ${key_env} is not set",
                hint=f"export {key_env}=... (or name another variable with api_key_env)",
            )
        extra: dict[str, Any] = {}
        if self.json_mode:
            extra["response_format"] = {"type": "json_object"}
        if self.format == "harmony":
            extra["reasoning_effort"] = self.reasoning_effort
        self._client = OpenAICompatModel(
            spec.target,
            base_url,
            api_key=key,
            timeout=self.timeout,
            max_connections=self.concurrency,
            extra_body=extra,
        )
        return self._client

    def system_prompt(self, category: str | None) -> str:
        """The compiled policy prompt for `category` (the whole policy when None or unknown)."""
        if self.policy is None:
            key: str | None = "__generic__"
        else:
            key = category if category and self.policy.category(category) else None
        if key not in self._prompts:
            if self.policy is None:
                self._prompts[key] = render("judge_system.md.j2")
            else:
                # str(): the compiled prompt object renders as its text
                self._prompts[key] = str(compile_grader_prompt(self.policy, category=key))
        return self._prompts[key]

    # -- grading ---------------------------------------------------------------------------------
    async def agrade(self, samples: Sequence[Sample]) -> list[Verdict]:
        client = self._open_client()
        gate = asyncio.Semaphore(self.concurrency)

        async def one(sample: Sample) -> Verdict:
            async with gate:
                return await self._grade_one(client, sample)

        try:
            return list(await asyncio.gather(*(one(s) for s in samples)))
        finally:
            if isinstance(self.model, str):
                await client.aclose()
                self._client = None

    async def _grade_one(self, client: TargetModel, sample: Sample) -> Verdict:
        nonce = _nonce(sample)
        messages = build_messages(
            sample,
            system_prompt=self.system_prompt(sample.category),
            nonce=nonce,
            format=self.format,
            effort=self.reasoning_effort,
        )
        params = SamplingParams(temperature=self.temperature, max_tokens=self.max_tokens)
        attempts = 0
        completion: Completion | None = None
        while completion is None:
            attempts += 1
            try:
                completion = await client.complete(messages, params=params, item_id=sample.id)
            except RetryableError as exc:
                if attempts >= self.max_attempts:
                    return self._error(
                        sample, f"judge unreachable after {attempts} attempts: {exc}"
                    )
                await asyncio.sleep(self._delay(attempts, exc.retry_after))
            except ModelError as exc:
                return self._error(sample, f"judge request failed: {exc}")
        usage = {
            "attempts": attempts,
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
        }
        reply = completion.text
        if not reply.strip():
            # Some servers put a harmony final channel only in the raw message.
            reply = str(completion.message.get("content") or "")
        content = "\n".join([*(m.text for m in sample.messages), sample.response])
        try:
            parsed = parse_judge_reply(reply, content=content)
        except JudgeReplyError as exc:
            return self._error(sample, str(exc), raw_output=reply, extra=usage)
        category, notes = self._check_ids(parsed.category, parsed.rule_ids)
        violation = parsed.violation
        if violation is None:
            violation = violates(parsed.behavior, expected_behavior(sample, self.policy))
        rationale = parsed.rationale or ""
        if notes:
            rationale = f"{rationale} [{'; '.join(notes)}]".strip()
        return Verdict(
            sample_id=sample.id,
            behavior=parsed.behavior,
            violation=violation,
            category=category or sample.category,
            rule_ids=[r for r in parsed.rule_ids if self._known_rule(r)],
            confidence=parsed.confidence,
            rationale=rationale or None,
            raw_output=reply,
            grader_id=self.id,
            grader_version=self.version,
            policy_id=self.policy.id if self.policy else None,
            policy_hash=self.policy.content_hash if self.policy else None,
            extra={"model": self.model_name, **usage},
        )

    def _check_ids(self, category: str | None, rule_ids: list[str]) -> tuple[str | None, list[str]]:
        notes: list[str] = []
        if self.policy is None:
            return category, notes
        if category is not None and self.policy.category(category) is None:
            notes.append(f"judge named unknown category {category!r}, dropped")
            category = None
        unknown = [r for r in rule_ids if self.policy.rule(r) is None]
        if unknown:
            notes.append(f"judge named unknown rule ids {unknown}, dropped")
        return category, notes

    def _known_rule(self, rule_id: str) -> bool:
        return self.policy is None or self.policy.rule(rule_id) is not None

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        backoff = self.backoff_base * (2 ** (attempt - 1)) * (0.5 + random.random())
        return float(max(backoff, retry_after or 0.0))

    def _error(
        self,
        sample: Sample,
        message: str,
        *,
        raw_output: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Verdict:
        verdict = error_verdict(
            sample.id,
            message,
            grader_id=self.id,
            grader_version=self.version,
            policy=self.policy,
            raw_output=raw_output,
        )
        verdict.extra = {"model": self.model_name, **(extra or {})}
        return verdict


def _nonce(sample: Sample) -> str:
    """A code the content cannot contain: drawn fresh per call, redrawn on the (unlikely) clash."""
    while True:
        nonce = secrets.token_hex(8)
        if nonce not in sample.response and all(nonce not in m.text for m in sample.messages):
            return nonce
