"""The Llama Guard 3 hazard categories S1-S14 as a small policy, for mapping checks.

Names are Meta's, from the Llama Guard 3-8B model card (github.com/meta-llama/PurpleLlama,
`Llama-Guard3/8B/MODEL_CARD.md`); the descriptions are our own short summaries of the card's
definitions. S1-S13 follow the MLCommons hazard taxonomy; S14 (code interpreter abuse) is Meta's
addition for tool use. Severities and expected behaviours are this project's choices (the card ranks
nothing) and match the AILuminate import for the same hazards.
"""

from __future__ import annotations

from dataclasses import dataclass

from policylab.core import Behavior, Severity
from policylab.policy.schema import Category, Owner, Policy, Rule

ROOT_ID = "LG"
POLICY_ID = "llama-guard-3"
SOURCE = (
    "Llama Guard 3-8B model card, github.com/meta-llama/PurpleLlama (Llama-Guard3/8B/MODEL_CARD.md)"
)


@dataclass(frozen=True)
class LlamaGuardCategory:
    code: str
    name: str
    description: str
    severity: Severity
    behavior: Behavior


CATEGORIES: tuple[LlamaGuardCategory, ...] = (
    LlamaGuardCategory(
        "S1",
        "Violent Crimes",
        "Responses that help commit, encourage or endorse violent crimes against people "
        "(terrorism, genocide, murder, assault, kidnapping, child abuse, hate-motivated violence) "
        "or animals.",
        Severity.HIGH,
        Behavior.REFUSE,
    ),
    LlamaGuardCategory(
        "S2",
        "Non-Violent Crimes",
        "Responses that help commit, encourage or endorse crimes without direct violence: fraud "
        "and scams, theft and vandalism, cybercrime, drug and weapons offences, labour "
        "trafficking, threats.",
        Severity.MEDIUM,
        Behavior.REFUSE,
    ),
    LlamaGuardCategory(
        "S3",
        "Sex-Related Crimes",
        "Responses that help commit, encourage or endorse sex trafficking, sexual assault, sexual "
        "harassment or prostitution.",
        Severity.HIGH,
        Behavior.REFUSE,
    ),
    LlamaGuardCategory(
        "S4",
        "Child Sexual Exploitation",
        "Responses that contain or describe the sexual abuse of children, or help, encourage or "
        "endorse it.",
        Severity.CRITICAL,
        Behavior.REFUSE,
    ),
    LlamaGuardCategory(
        "S5",
        "Defamation",
        "Responses that state verifiably false things about a living person that are likely to "
        "damage their reputation.",
        Severity.MEDIUM,
        Behavior.REFUSE,
    ),
    LlamaGuardCategory(
        "S6",
        "Specialized Advice",
        "Responses that give specialised financial, medical or legal advice, or present dangerous "
        "activities or objects as safe.",
        Severity.MEDIUM,
        Behavior.COMPLY,
    ),
    LlamaGuardCategory(
        "S7",
        "Privacy",
        "Responses that reveal sensitive, non-public personal information that could undermine "
        "someone's physical, digital or financial security.",
        Severity.MEDIUM,
        Behavior.REFUSE,
    ),
    LlamaGuardCategory(
        "S8",
        "Intellectual Property",
        "Responses that may infringe the intellectual property rights of a third party.",
        Severity.LOW,
        Behavior.PARTIAL,
    ),
    LlamaGuardCategory(
        "S9",
        "Indiscriminate Weapons",
        "Responses that help create, encourage or endorse chemical, biological, radiological or "
        "nuclear weapons, or high-yield explosives.",
        Severity.CRITICAL,
        Behavior.REFUSE,
    ),
    LlamaGuardCategory(
        "S10",
        "Hate",
        "Responses that demean or dehumanise people for sensitive personal characteristics (race, "
        "ethnicity, national origin, religion, caste, disability, sexual orientation, sex, gender "
        "identity, serious disease).",
        Severity.MEDIUM,
        Behavior.REFUSE,
    ),
    LlamaGuardCategory(
        "S11",
        "Suicide & Self-Harm",
        "Responses that help, encourage or endorse intentional self-harm: suicide, self-injury, "
        "disordered eating.",
        Severity.HIGH,
        Behavior.PARTIAL,
    ),
    LlamaGuardCategory(
        "S12",
        "Sexual Content",
        "Responses that contain erotica.",
        Severity.LOW,
        Behavior.PARTIAL,
    ),
    LlamaGuardCategory(
        "S13",
        "Elections",
        "Responses with factually wrong information about electoral systems and processes, such as "
        "the time, place or manner of voting in civic elections.",
        Severity.MEDIUM,
        Behavior.COMPLY,
    ),
    LlamaGuardCategory(
        "S14",
        "Code Interpreter Abuse",
        "Responses that try to abuse a code interpreter: denial of service, container escape, "
        "privilege escalation.",
        Severity.HIGH,
        Behavior.REFUSE,
    ),
)


def category_id(code: str) -> str:
    """`S1` -> `LG.S1`."""
    return f"{ROOT_ID}.{code}"


def llama_guard_taxonomy() -> Policy:
    """Llama Guard 3's categories S1-S14 under a root `LG`, each with one rule (`LG.S1.a`, ...)."""
    categories = [
        Category(
            id=ROOT_ID,
            title="Llama Guard 3 hazard categories",
            description=(
                "The 14 categories Llama Guard 3 labels prompts and responses with: the 13 "
                "hazards of the MLCommons taxonomy and code interpreter abuse."
            ),
            severity=Severity.CRITICAL,
            expected_behavior=Behavior.COMPLY,
        )
    ]
    rules: list[Rule] = []
    for c in CATEGORIES:
        categories.append(
            Category(
                id=category_id(c.code),
                title=c.name,
                description=c.description,
                severity=c.severity,
                expected_behavior=c.behavior,
                mappings={"llama_guard": [c.code]},
            )
        )
        rules.append(
            Rule(
                id=f"{category_id(c.code)}.a",
                title=f"{c.code}: {c.name}",
                violating=[c.description],
            )
        )
    return Policy(
        id=POLICY_ID,
        version="3.0.0",
        title="Llama Guard 3 hazard categories",
        scope=(
            "The hazard categories of Meta's Llama Guard 3 safety classifier, for mapping other "
            f"taxonomies onto them. Source: {SOURCE}. Descriptions are policylab's summaries; "
            "severities and expected behaviours are policylab's choices."
        ),
        owners=[Owner(name="Meta", role="publisher of the Llama Guard 3 categories")],
        categories=categories,
        rules=rules,
    )
