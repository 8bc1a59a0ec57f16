"""All tables. Each area keeps its tables in its own module; importing them here registers them."""

from policylab.store.models.base import Base, JSONType
from policylab.store.models.eval import EvalSet, Item, Response, ResponseCache, Run
from policylab.store.models.policy import PolicyVersion
from policylab.store.models.verdicts import VerdictRecord

__all__ = [
    "Base",
    "EvalSet",
    "Item",
    "JSONType",
    "PolicyVersion",
    "Response",
    "ResponseCache",
    "Run",
    "VerdictRecord",
]
