"""Requirements in Model Spec prose, found by their wording: a heuristic, not an understanding.

A sentence is a *prohibition* when it negates a deontic modal ("should not", "must never", "shall
not", "in no circumstances"), says "never", or starts with "Do not"/"Don't"/"Never"/"Avoid"; an
*obligation* when it says "should", "must", "shall", "needs to", "has to" or "is required/expected
to"; a *permission* when it says "may", "can" or "is allowed/permitted to" and names the assistant
or the model (without that, "may" and "can" are mostly about possibility: "users may
sometimes..."). Everything else is context and yields nothing. Paragraphs of commentary (`!!!
meta`) are not instructions to the model.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

_SENTENCE_BREAK = re.compile(r"(?<=[.!?])[\"'”’)\]*_]*\s+(?=[\"'“‘(\[*_`]*[A-Z0-9])")
_LEAD_LABEL = re.compile(r"^\*\*[^*]+\*\*:?\s*|^\*[^*]+\*:?\s*")
_PROHIBITION = re.compile(
    r"\b(?:should|must|shall)(?:\s+not|n['’]t|\s+never)\b"
    r"|\bin no (?:circumstances|case)\b"
    r"|\bnever\b"
    r"|\bis (?:not allowed|prohibited|forbidden)\b",
    re.I,
)
_NEGATIVE_IMPERATIVE = re.compile(r"^(?:do not|don['’]t|never|avoid)\b", re.I)
_OBLIGATION = re.compile(
    r"\b(?:should|must|shall|needs? to|has to|have to|is (?:required|expected) to|ought to)\b", re.I
)
_PERMISSION = re.compile(
    r"\b(?:may|can|is (?:allowed|permitted|encouraged) to"
    r"|(?:is|it['’]s) (?:fine|okay|acceptable))\b",
    re.I,
)
_ACTOR = re.compile(r"\b(?:assistant|model)\b", re.I)


@dataclass
class Requirement:
    """One paragraph or list item holding at least one requirement, its sentences sorted by kind."""

    line: int
    sentences: list[str] = field(default_factory=list)
    prohibitions: list[str] = field(default_factory=list)
    obligations: list[str] = field(default_factory=list)
    permissions: list[str] = field(default_factory=list)


def sentences(text: str) -> list[str]:
    flat = " ".join(text.split())
    return [s.strip() for s in _SENTENCE_BREAK.split(flat) if s.strip()]


def classify(sentence: str) -> str | None:
    """`prohibition`, `obligation`, `permission`, or None for context."""
    bare = _LEAD_LABEL.sub("", sentence)
    if _PROHIBITION.search(sentence) or _NEGATIVE_IMPERATIVE.match(bare):
        return "prohibition"
    if _OBLIGATION.search(sentence):
        return "obligation"
    if _PERMISSION.search(sentence) and _ACTOR.search(sentence):
        return "permission"
    return None


def requirements(
    paragraphs: list[tuple[int, str]], clean: Callable[[str], str]
) -> list[Requirement]:
    """The paragraphs that state requirements; `clean` rewrites each sentence (links, footnotes)."""
    out: list[Requirement] = []
    for line, text in paragraphs:
        if text.startswith(("!!!", "**Example**")):
            continue
        req = Requirement(line)
        for raw in sentences(text):
            kind = classify(raw)
            if kind is None:
                continue
            sentence = clean(raw)
            if not sentence:
                continue
            req.sentences.append(sentence)
            {"prohibition": req.prohibitions, "obligation": req.obligations}.get(
                kind, req.permissions
            ).append(sentence)
        if req.sentences:
            out.append(req)
    return out
