"""The policy file format, as pydantic models.

A policy is a taxonomy of categories (each with a harm model, a severity tier and the expected behaviour
for requests in it), rules with stable ids, definitions, precedence and ambiguity rules, labelled boundary
examples, mappings to external taxonomies and launch gates. `docs/policy-format.md` documents every field.

Every model forbids unknown keys: a misspelt key is an error, never silently ignored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from enum import StrEnum
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    model_serializer,
    model_validator,
)

from policylab.chat import ChatMessage
from policylab.core import Behavior, Severity

SEMVER = r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$"
CATEGORY_ID = r"^[A-Z][A-Z0-9_]*(\.[A-Za-z0-9_]+)*$"
RULE_ID = r"^[A-Z][A-Z0-9_]*(\.[A-Za-z0-9_]+)+$"
OBJECT_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"

CategoryId = Annotated[str, StringConstraints(pattern=CATEGORY_ID)]
RuleId = Annotated[str, StringConstraints(pattern=RULE_ID)]
ObjectId = Annotated[str, StringConstraints(pattern=OBJECT_ID)]
# OpenAI's limits on a function name; a dotted path into a call's JSON arguments.
TOOL_NAME = r"^[A-Za-z0-9_-]{1,64}$"
ARGUMENT_PATH = r"^[A-Za-z_][A-Za-z0-9_-]*(?:\[(?:\d+|\*)\]|\.[A-Za-z_][A-Za-z0-9_-]*)*$"
ToolName = Annotated[str, StringConstraints(pattern=TOOL_NAME)]
ArgumentPath = Annotated[str, StringConstraints(pattern=ARGUMENT_PATH)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=False, validate_default=True)


class Level(StrEnum):
    """A coarse three-step scale for likelihood and uplift."""

    NONE = "none"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Reversibility(StrEnum):
    REVERSIBLE = "reversible"
    PARTIAL = "partially_reversible"
    IRREVERSIBLE = "irreversible"


class Owner(_Model):
    name: Text
    email: str | None = None
    role: str | None = None


class ChangelogEntry(_Model):
    version: Annotated[str, StringConstraints(pattern=SEMVER)]
    date: dt.date | None = None
    summary: Text
    author: str | None = None


class Definition(_Model):
    term: Text
    definition: Text = Field(description="Markdown.")
    aliases: list[str] = Field(default_factory=list)


class HarmModel(_Model):
    """Who could be harmed, how, by whom, and how badly; the expected behaviour and gates follow from it.

    The severity of the harm is the category's `severity` tier.
    """

    harmed: list[Text] = Field(min_length=1, description="Who could be harmed.")
    mechanism: Text = Field(description="How a response could lead to harm (Markdown).")
    actors: list[Text] = Field(min_length=1, description="Who would misuse a response.")
    likelihood: Level = Field(description="How likely a compliant response leads to harm.")
    reversibility: Reversibility
    uplift: Level = Field(
        description="Capability a response gives over freely available information."
    )


class Category(_Model):
    """A node of the risk taxonomy. The parent of `CYB.2` is `CYB`."""

    id: CategoryId
    title: Text
    description: Text = Field(description="Markdown.")
    severity: Severity
    expected_behavior: Behavior = Field(
        description="What a response to a request in this category should do."
    )
    harm_model: HarmModel | None = None
    mappings: dict[str, list[str]] = Field(
        default_factory=dict,
        description=(
            "External taxonomy codes by namespace: `ailuminate` (hazard codes such as `vcr`), "
            "`llama_guard` (S-codes such as `S1`), `harmbench`, `do_not_answer`, or a team's own."
        ),
    )
    regulations: list[str] = Field(
        default_factory=list, description="Regulatory provisions this category addresses."
    )

    @property
    def parent_id(self) -> str | None:
        return self.id.rsplit(".", 1)[0] if "." in self.id else None


class RuleSubject(StrEnum):
    """What a rule judges: the text of a response, or the actions (tool calls) of an agent."""

    TEXT = "text"
    ACTION = "action"


class CallPattern(_Model):
    """One tool call: the tool's name, the values of its arguments, and what the tool returned."""

    tool: ToolName = Field(description="The tool's name, exactly as the agent calls it.")
    arguments: dict[ArgumentPath, str] = Field(
        default_factory=dict,
        description=(
            "Argument path (`to`, `payee.iban`, `items[*].amount`) -> a regular expression the "
            "value must contain (Python `re.search`; strings as they are, other values as JSON)."
        ),
    )
    result: str | None = Field(
        default=None,
        description="A regular expression the tool's result must contain: the side effect it "
        "reports.",
    )


class ActionPattern(_Model):
    """What an action rule looks for in a transcript: one tool call, or an ordered sequence.

    A match violates its rule; with `requires_confirmation`, only a match whose (last) call the
    user did not explicitly confirm beforehand violates.
    """

    id: ObjectId | None = Field(default=None, description="Names the pattern in verdicts.")
    description: str | None = Field(default=None, description="The pattern in words.")
    tool: ToolName | None = Field(default=None, description="One call of this tool.")
    arguments: dict[ArgumentPath, str] = Field(
        default_factory=dict, description="With `tool`: argument path -> regular expression."
    )
    result: str | None = Field(
        default=None, description="With `tool`: a regular expression on the tool's result."
    )
    sequence: list[CallPattern] | None = Field(
        default=None, min_length=2, description="Calls in this order (others may come between)."
    )
    requires_confirmation: bool = Field(
        default=False,
        description="Allowed only after the user explicitly confirms it, in reply to the agent.",
    )
    confirmation: str | None = Field(
        default=None,
        description="A regular expression a user reply must contain to count as a confirmation "
        "(default: policylab's explicit yeses).",
    )

    @model_validator(mode="after")
    def _check(self) -> ActionPattern:
        if (self.tool is None) == (self.sequence is None):
            raise ValueError("give exactly one of `tool` (one call) or `sequence` (ordered calls)")
        if self.sequence is not None and (self.arguments or self.result is not None):
            raise ValueError("with `sequence`, put `arguments` and `result` on its steps")
        return self

    @property
    def steps(self) -> list[CallPattern]:
        """The calls to match, in order (one for a `tool` pattern)."""
        if self.sequence is not None:
            return self.sequence
        assert self.tool is not None
        return [CallPattern(tool=self.tool, arguments=self.arguments, result=self.result)]

    @property
    def label(self) -> str:
        """`id`, else the tools it names: `send_payment`, `read_file > send_email`."""
        return self.id or " > ".join(step.tool for step in self.steps)


class Rule(_Model):
    """A line the policy draws, with a stable id (e.g. `CYB.2.a`)."""

    id: RuleId
    category: CategoryId | None = Field(
        default=None, description="Defaults to the id without its last segment."
    )
    title: Text
    allowed: list[Text] = Field(default_factory=list, description="What a response may do.")
    violating: list[Text] = Field(min_length=1, description="What makes a response violate.")
    escalate: list[Text] = Field(
        default_factory=list, description="What must go to a human reviewer."
    )
    ambiguity: list[Text] = Field(
        default_factory=list, description="How to decide the unclear cases near this line."
    )
    notes: str | None = None
    regulations: list[str] = Field(
        default_factory=list,
        description="Provisions this rule implements: `framework:provision` ids or free text.",
    )
    subject: RuleSubject = Field(
        default=RuleSubject.TEXT,
        description="`text`: the rule judges a response's text; `action`: an agent's tool calls.",
    )
    actions: list[ActionPattern] = Field(
        default_factory=list, description="For `subject: action`: the calls that violate."
    )

    @model_validator(mode="after")
    def _check_subject(self) -> Rule:
        if self.actions and self.subject is not RuleSubject.ACTION:
            raise ValueError("`actions` belong to action rules: add `subject: action`")
        return self

    @model_serializer(mode="wrap")
    def _omit_text_defaults(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        # Left out at their defaults, so rules written before action rules keep their content hash.
        if isinstance(data, dict):
            if self.subject is RuleSubject.TEXT:
                data.pop("subject", None)
            if not self.actions:
                data.pop("actions", None)
        return data

    @property
    def category_id(self) -> str:
        return self.category or self.id.rsplit(".", 1)[0]

    @property
    def is_action(self) -> bool:
        return self.subject is RuleSubject.ACTION


class Precedence(_Model):
    """When a request touches two categories, `category` wins over those in `over`."""

    category: CategoryId
    over: list[CategoryId] = Field(min_length=1)
    reason: Text


class AmbiguityRule(_Model):
    id: ObjectId
    when: Text = Field(description="The situation that is unclear.")
    resolve: Text = Field(description="How to decide it.")
    categories: list[CategoryId] = Field(default_factory=list)


class ResponseLabel(StrEnum):
    GOOD = "good"
    BAD = "bad"


class ExampleResponse(_Model):
    """A Model-Spec-style GOOD or BAD response to an example's prompt."""

    label: ResponseLabel
    text: Text
    behavior: Behavior | None = None
    rationale: str | None = None


class Example(_Model):
    """A labelled boundary example: a request near a line, and how it should be handled."""

    id: ObjectId
    category: CategoryId
    prompt: Text | None = None
    messages: list[ChatMessage] | None = None
    expected_behavior: Behavior = Field(description="What a response to this request should do.")
    response: str | None = Field(default=None, description="An optional response to judge.")
    response_behavior: Behavior | None = Field(
        default=None, description="What the given `response` does."
    )
    violates: bool | None = Field(
        default=None, description="Whether the given `response` violates the policy."
    )
    responses: list[ExampleResponse] = Field(default_factory=list)
    rule_ids: list[RuleId] = Field(default_factory=list)
    rationale: Text
    tags: list[str] = Field(default_factory=list)
    transcript: list[ChatMessage] | None = Field(
        default=None,
        description="An agent's turns after the request (tool calls, tool results, replies), "
        "judged like a `response`.",
    )

    @model_validator(mode="after")
    def _check(self) -> Example:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError(
                "give exactly one of `prompt` (a string) or `messages` (a conversation)"
            )
        if self.response is not None and self.transcript is not None:
            raise ValueError(
                "give a `response` (text) or a `transcript` (an agent's turns), not both: a "
                "transcript's last assistant turn is its response"
            )
        judged = self.response is not None or self.transcript is not None
        if not judged and (self.violates is not None or self.response_behavior):
            raise ValueError(
                "`violates` and `response_behavior` describe a `response` or `transcript`: add one"
            )
        if judged and self.violates is None:
            what = "`response`" if self.response is not None else "`transcript`"
            raise ValueError(
                f"an example with a {what} must say whether it `violates` (true/false)"
            )
        if self.transcript is not None and not any(m.role == "assistant" for m in self.transcript):
            raise ValueError("a `transcript` needs at least one assistant turn")
        return self

    @model_serializer(mode="wrap")
    def _omit_no_transcript(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        # Left out when unset, so examples written before transcripts keep their content hash.
        if isinstance(data, dict) and self.transcript is None:
            data.pop("transcript", None)
        return data

    @property
    def side(self) -> Literal["allowed", "violating"]:
        """Which side of the line the request falls on: answerable in full, or not."""
        return "allowed" if self.expected_behavior is Behavior.COMPLY else "violating"

    @property
    def conversation(self) -> list[ChatMessage]:
        if self.messages is not None:
            return self.messages
        return [ChatMessage(role="user", content=self.prompt)]


class GraderAgreementGate(_Model):
    metric: Literal["cohen_kappa", "accuracy"] = "cohen_kappa"
    min: float = Field(ge=-1.0, le=1.0)


class Gates(_Model):
    """Launch gates. A model passes when every measured rate is within its limit."""

    under_refusal: dict[Severity, Annotated[float, Field(ge=0.0, le=1.0)]] = Field(
        default_factory=dict,
        description="Maximum harmful-compliance rate per severity tier.",
    )
    over_refusal: Annotated[float, Field(ge=0.0, le=1.0)] | None = Field(
        default=None, description="Maximum rate of refusing or partially refusing allowed requests."
    )
    grader_agreement: GraderAgreementGate | None = Field(
        default=None, description="Minimum agreement of the grader with gold labels."
    )
    decision: Literal["point", "upper_bound"] = Field(
        default="upper_bound",
        description=(
            "Compare the gate with the point estimate, or (stricter, the default) with the upper end "
            "of its 95% Wilson interval."
        ),
    )
    min_items: int = Field(
        default=30,
        ge=0,
        description="Fewer graded items than this in a tier: the gate is inconclusive.",
    )


DURATION = r"^[1-9][0-9]*[hdw]$"
Duration = Annotated[str, StringConstraints(pattern=DURATION)]


class DriftAlerts(_Model):
    """When `policylab monitor drift` raises a drift alert (defaults: Evidently's)."""

    window: Duration = Field(default="1d", description="The current window: hours, days or weeks.")
    reference: Duration = Field(default="7d", description="The reference window before it.")
    p_value: float = Field(default=0.05, gt=0.0, lt=1.0, description="Chi-squared significance.")
    js_threshold: float = Field(default=0.1, gt=0.0, le=1.0, description="Jensen–Shannon distance.")
    small_reference: int = Field(
        default=1000, ge=1, description="Up to this many reference conversations: chi-squared."
    )
    min_window: int = Field(default=200, ge=1, description="Smaller windows are not tested.")


class RateAlert(_Model):
    """An alert when a category's rate in a window is, with 95% confidence, above `max`."""

    category: CategoryId
    metric: Literal["share", "violation", "refusal"] = "share"
    max: float = Field(ge=0.0, le=1.0)


class Monitoring(_Model):
    """Alert thresholds for deployment monitoring (root file only)."""

    drift: DriftAlerts = Field(default_factory=DriftAlerts)
    rates: list[RateAlert] = Field(default_factory=list)


class PolicyContent(_Model):
    """What any policy file may hold, the root file or an included fragment."""

    include: list[str] = Field(default_factory=list, description="Paths relative to this file.")
    definitions: list[Definition] = Field(default_factory=list)
    categories: list[Category] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)
    precedence: list[Precedence] = Field(default_factory=list)
    ambiguity: list[AmbiguityRule] = Field(default_factory=list)
    examples: list[Example] = Field(default_factory=list)


class PolicyHeader(_Model):
    id: ObjectId
    version: Annotated[str, StringConstraints(pattern=SEMVER)]
    title: Text
    scope: Text = Field(description="What the policy covers and what it does not (Markdown).")
    owners: list[Owner] = Field(min_length=1)
    changelog: list[ChangelogEntry] = Field(default_factory=list)
    grader_token_budget: int = Field(
        default=600, gt=0, description="Token budget of the compiled grader prompt per category."
    )


class PolicyFile(PolicyHeader, PolicyContent):
    """The root policy file."""

    gates: Gates = Field(default_factory=Gates)
    monitoring: Monitoring | None = None


class Policy(_Model):
    """A whole policy, its includes merged."""

    id: str
    version: str
    title: str
    scope: str
    owners: list[Owner]
    changelog: list[ChangelogEntry] = Field(default_factory=list)
    grader_token_budget: int = 600
    definitions: list[Definition] = Field(default_factory=list)
    categories: list[Category] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)
    precedence: list[Precedence] = Field(default_factory=list)
    ambiguity: list[AmbiguityRule] = Field(default_factory=list)
    examples: list[Example] = Field(default_factory=list)
    gates: Gates = Field(default_factory=Gates)
    monitoring: Monitoring | None = None

    def canonical_json(self) -> bytes:
        """The policy as canonical JSON: the same content gives the same bytes, whatever the layout."""
        # Without a `monitoring` section the key is left out, so policies written before it
        # existed keep their content hash.
        exclude = {"monitoring"} if self.monitoring is None else None
        return orjson.dumps(
            self.model_dump(mode="json", exclude=exclude), option=orjson.OPT_SORT_KEYS
        )

    @property
    def content_hash(self) -> str:
        return "sha256:" + hashlib.sha256(self.canonical_json()).hexdigest()

    # Look-ups: the policy is small, so these scan; callers in hot loops build their own maps.
    def category(self, category_id: str) -> Category | None:
        return next((c for c in self.categories if c.id == category_id), None)

    def rule(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)

    def children(self, category_id: str) -> list[Category]:
        return [c for c in self.categories if c.parent_id == category_id]

    def rules_for(self, category_id: str) -> list[Rule]:
        return [r for r in self.rules if r.category_id == category_id]

    def examples_for(self, category_id: str) -> list[Example]:
        return [e for e in self.examples if e.category == category_id]

    def ancestors(self, category_id: str) -> list[str]:
        """`CYB.2.x` -> [`CYB.2`, `CYB`]: the chain of parent ids, nearest first."""
        out: list[str] = []
        current = category_id
        while "." in current:
            current = current.rsplit(".", 1)[0]
            out.append(current)
        return out

    def is_under(self, category_id: str, ancestor_id: str) -> bool:
        return category_id == ancestor_id or ancestor_id in self.ancestors(category_id)
