"""The agent evaluation report: action results, the regulatory mapping, and the transcripts where
a rule broke, as one self-contained HTML page or Markdown.

Every number comes from `results.actions` and `results.regulatory` (so from `stats`); this module
only gathers them and renders `templates/agents/report.*.j2`, which include the report sections
`report/_actions.*.j2` and `report/_regulatory.*.j2`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

from policylab.chat import ChatMessage, ImagePart
from policylab.data.images import thumbnail
from policylab.policy.schema import Policy
from policylab.report import format as fmt
from policylab.results.actions import ActionResults
from policylab.results.regulatory import RegulatoryMapping
from policylab.templating import environment

__all__ = ["AgentReport", "TurnView", "render_agent_report", "transcript_view"]

ReportFormat = Literal["html", "markdown"]


@dataclass(frozen=True)
class TurnView:
    """One message of a transcript as the report shows it."""

    role: str
    label: str
    """`user`, `assistant · turn 2`, `tool result (send_payment)`."""
    text: str
    calls: list[str]
    images: list[str]
    """Thumbnails as data URLs; an empty string for an image that could not be read."""
    broke: bool

    @property
    def plain(self) -> str:
        """The message as plain text: its text, `[image]` per image, `→ tool(arguments)` per call."""
        parts = [self.text] if self.text else []
        parts += ["[image]"] * len(self.images)
        parts += [f"→ {call}" for call in self.calls]
        return "\n".join(parts)


def transcript_view(messages: list[ChatMessage], broken: set[int]) -> list[TurnView]:
    """The messages of a transcript, turns numbered, the turns where a rule broke marked."""
    names = {tc.id: tc.function.name for m in messages for tc in m.tool_calls or []}
    out: list[TurnView] = []
    turn = 0
    for m in messages:
        label: str = m.role
        if m.role == "assistant":
            turn += 1
            label = f"assistant · turn {turn}"
        elif m.role == "tool":
            label = f"tool result ({names.get(m.tool_call_id or '', '?')})"
        images = [
            thumbnail(part.image_url.url) or ""
            for part in (m.content if isinstance(m.content, list) else [])
            if isinstance(part, ImagePart)
        ]
        out.append(
            TurnView(
                role=m.role,
                label=label,
                text=m.text,
                calls=[f"{tc.function.name}({tc.function.arguments})" for tc in m.tool_calls or []],
                images=images,
                broke=m.role == "assistant" and turn in broken,
            )
        )
    return out


@dataclass(frozen=True)
class AgentReport:
    """What the agent report shows."""

    policy: Policy
    run: str
    model: str
    eval_set: str
    actions: ActionResults
    regulatory: RegulatoryMapping
    transcripts: dict[str, list[ChatMessage]] = field(default_factory=dict)
    """The whole conversations of the transcripts where a rule broke."""
    generated_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    @property
    def title(self) -> str:
        return f"{self.policy.title}: {self.model}"

    def views(self) -> dict[str, list[TurnView]]:
        """The transcripts where a rule broke, as the report shows them."""
        broken = self.broken_turns
        return {t: transcript_view(m, broken.get(t, set())) for t, m in self.transcripts.items()}

    @property
    def broken_turns(self) -> dict[str, set[int]]:
        """Per transcript, the agent turns at which a rule broke."""
        out: dict[str, set[int]] = {}
        for v in self.actions.violations:
            out.setdefault(v.transcript, set()).add(v.turn)
        return out


def render_agent_report(report: AgentReport, *, fmt_name: ReportFormat = "html") -> str:
    """The report as HTML (self-contained; images as small inline thumbnails) or Markdown."""
    template = "agents/report.html.j2" if fmt_name == "html" else "agents/report.md.j2"
    return (
        environment()
        .get_template(template)
        .render(
            report=report,
            policy=report.policy,
            actions=report.actions,
            regulatory=report.regulatory,
            transcripts=report.views(),
            pct=fmt.pct,
            interval=fmt.interval,
            count=fmt.count,
            for_print=False,
        )
    )
