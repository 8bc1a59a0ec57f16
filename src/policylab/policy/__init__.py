"""The policy file: schema, loader, linter, diff, compilers and importers."""

from policylab.policy.loader import LoadedPolicy, load_policy
from policylab.policy.schema import (
    Category,
    Example,
    Gates,
    HarmModel,
    Policy,
    Rule,
)

__all__ = [
    "Category",
    "Example",
    "Gates",
    "HarmModel",
    "LoadedPolicy",
    "Policy",
    "Rule",
    "load_policy",
]
