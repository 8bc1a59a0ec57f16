"""The eval item: a conversation for a target model to answer, with its labels and metadata.

The last turn of an item's conversation is from the user (or a tool result): the target model speaks
next. An item tagged `transcript` may end on an assistant turn instead: it is a finished
conversation to grade as it stands (for example a recorded response from a red-teaming log).
"""

from __future__ import annotations

import hashlib
import unicodedata
from functools import cached_property
from typing import Annotated, Any

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
    field_validator,
    model_validator,
)

from policylab.chat import ChatMessage, TextPart, transcript_text
from policylab.core import Behavior

TRANSCRIPT_TAG = "transcript"
"""Tag of an item whose conversation may end on an assistant turn: it is graded as it stands."""

ANSWERABLE_ROLES = frozenset({"user", "tool"})

ExternalId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]


def normalise_text(text: str) -> str:
    """Text as compared for exact duplicates: Unicode NFC, LF line endings, no trailing spaces.

    Only differences a reader cannot see are removed, so code and paragraph layout still count:
    `"a\\r\\nb "` and `"a\\nb"` are the same text, `"a b"` and `"a  b"` are not.
    """
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    return "\n".join(line.rstrip() for line in text.split("\n")).strip()


class ItemRecord(BaseModel):
    """One eval item, independent of where it is stored. `id` is the item's id in its source."""

    model_config = ConfigDict(extra="forbid")

    id: ExternalId
    messages: list[ChatMessage] = Field(min_length=1)
    categories: list[str] = Field(default_factory=list, description="Policy category ids.")
    expected_behavior: Behavior | None = None
    source: Annotated[str, StringConstraints(max_length=300)] | None = None
    language: Annotated[str, StringConstraints(max_length=20)] | None = None
    tags: list[str] = Field(default_factory=list)
    split: Annotated[str, StringConstraints(max_length=50)] | None = None
    metadata: dict[str, JsonValue] = Field(default_factory=dict)

    @field_validator("categories", "tags")
    @classmethod
    def _unique(cls, values: list[str]) -> list[str]:
        out: list[str] = []
        for v in values:
            v = v.strip()
            if v and v not in out:
                out.append(v)
        return out

    @model_validator(mode="after")
    def _check_conversation(self) -> ItemRecord:
        if not any(m.role == "user" for m in self.messages):
            raise ValueError("the conversation has no user turn")
        last = self.messages[-1].role
        if last not in ANSWERABLE_ROLES and TRANSCRIPT_TAG not in self.tags:
            raise ValueError(
                f"the conversation ends on a {last} turn: the last turn must be from the user "
                f"(or a tool result), or tag the item `{TRANSCRIPT_TAG}` to grade it as it stands"
            )
        return self

    @classmethod
    def from_prompt(
        cls,
        prompt: str,
        *,
        id: str | None = None,
        system: str | None = None,
        categories: list[str] | None = None,
        expected_behavior: Behavior | str | None = None,
        source: str | None = None,
        language: str | None = None,
        tags: list[str] | None = None,
        split: str | None = None,
        metadata: dict[str, JsonValue] | None = None,
    ) -> ItemRecord:
        """An item from a single user prompt (after an optional system prompt).

        Without `id`, the id is the first 16 hex digits of the content hash.
        """
        messages = [ChatMessage(role="user", content=prompt)]
        if system is not None:
            messages.insert(0, ChatMessage(role="system", content=system))
        return cls(
            id=id or content_hash(messages)[:16],
            messages=messages,
            categories=categories or [],
            expected_behavior=Behavior(expected_behavior) if expected_behavior else None,
            source=source,
            language=language,
            tags=tags or [],
            split=split,
            metadata=metadata or {},
        )

    @cached_property
    def content_hash(self) -> str:
        """SHA-256 (hex) of the normalised conversation; labels and metadata are left out."""
        return content_hash(self.messages)

    @property
    def prompt(self) -> str:
        """The text of the last user turn."""
        return next((m.text for m in reversed(self.messages) if m.role == "user"), "")

    @property
    def text(self) -> str:
        """The whole conversation as plain text, one `role: text` block per turn."""
        return transcript_text(self.messages)

    def messages_json(self) -> list[dict[str, Any]]:
        """The conversation as plain JSON, unset keys left out (the form stored and exported)."""
        return [m.model_dump(mode="json", exclude_none=True) for m in self.messages]


def content_hash(messages: list[ChatMessage]) -> str:
    """SHA-256 (hex) of a conversation with every text normalised by `normalise_text`."""
    canonical = [_normalised(m) for m in messages]
    return hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _normalised(message: ChatMessage) -> dict[str, Any]:
    data = message.model_dump(mode="json", exclude_none=True)
    if isinstance(message.content, str):
        data["content"] = normalise_text(message.content)
    elif message.content is not None:
        data["content"] = [
            {"type": "text", "text": normalise_text(p.text)}
            if isinstance(p, TextPart)
            else p.model_dump(mode="json", exclude_none=True)
            for p in message.content
        ]
    return data
