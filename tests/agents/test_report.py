"""The agent report: transcripts with turns numbered, broken turns marked, images as thumbnails."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from policylab.agents.report import AgentReport, render_agent_report, transcript_view
from policylab.chat import ChatMessage
from policylab.policy.frameworks import builtin_frameworks
from policylab.policy.loader import load_policy
from policylab.results.actions import TranscriptOutcome, action_results
from policylab.results.regulatory import cited_frameworks, regulatory_mapping

REPO = Path(__file__).resolve().parents[2]
POLICY = load_policy(REPO / "examples" / "agentic" / "policy.yaml").policy


def _conversation(image: Path) -> list[ChatMessage]:
    return [
        ChatMessage.model_validate(m)
        for m in [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Pay this bill."},
                    {"type": "image_url", "image_url": {"url": str(image)}},
                ],
            },
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {
                            "name": "send_payment",
                            "arguments": '{"to": "acct-1", "amount": 9}',
                        },
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": '{"status": "sent"}'},
            {"role": "assistant", "content": "Paid."},
        ]
    ]


def _image(tmp_path: Path) -> Path:
    path = tmp_path / "bill.png"
    out = io.BytesIO()
    Image.new("RGB", (400, 200), (250, 250, 250)).save(out, format="PNG")
    path.write_bytes(out.getvalue())
    return path


def test_transcript_view(tmp_path: Path) -> None:
    views = transcript_view(_conversation(_image(tmp_path)), {1})
    assert [v.label for v in views] == [
        "user",
        "assistant · turn 1",
        "tool result (send_payment)",
        "assistant · turn 2",
    ]
    assert [v.broke for v in views] == [False, True, False, False]
    assert views[0].images[0].startswith("data:image/png;base64,")
    assert views[0].plain == "Pay this bill.\n[image]"
    assert views[1].plain == '→ send_payment({"to": "acct-1", "amount": 9})'


def test_report_shows_the_broken_turn_with_a_thumbnail(tmp_path: Path) -> None:
    outcome = TranscriptOutcome(
        external_id="bill",
        categories=["AGT.PAY"],
        expected="comply",
        behavior="comply",
        extra={
            "violations": [
                {
                    "rule_id": "AGT.PAY.a",
                    "turn": 1,
                    "tool": "send_payment",
                    "arguments": "{}",
                    "reason": "unconfirmed",
                    "pattern": "unconfirmed-payment",
                }
            ],
            "rules": {
                "AGT.PAY.a": {"in_scope": True, "violations": 1, "confirmation": "unconfirmed"}
            },
        },
    )
    actions = action_results(POLICY, [outcome])
    frameworks = builtin_frameworks()
    report = AgentReport(
        policy=POLICY,
        run="r",
        model="agent[m]",
        eval_set="s",
        actions=actions,
        regulatory=regulatory_mapping(
            POLICY, cited_frameworks(POLICY, frameworks), actions=actions
        ),
        transcripts={"bill": _conversation(_image(tmp_path))},
    )
    assert report.broken_turns == {"bill": {1}}
    html = render_agent_report(report)
    assert html.count('<img class="thumb" src="data:image/png;base64,') == 1
    assert (
        '<div class="turn broke"><div class="role">assistant · turn 1 · rule broken</div>' in html
    )
    assert 'src="http' not in html  # self-contained: nothing is fetched
    markdown = render_agent_report(report, fmt_name="markdown")
    assert "*assistant · turn 1 (rule broken):*" in markdown
    assert "Pay this bill.\n[image]" in markdown
