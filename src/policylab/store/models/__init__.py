"""All tables. Each area keeps its tables in its own module; importing them here registers them."""

from policylab.store.models.base import Base, JSONType
from policylab.store.models.campaigns import (
    Adjudication,
    Assignment,
    Campaign,
    CampaignItem,
    Label,
    Qualification,
)
from policylab.store.models.eval import EvalSet, Item, Response, ResponseCache, Run
from policylab.store.models.graders import GraderValidation
from policylab.store.models.monitor import (
    MonitorCluster,
    MonitorClusterMember,
    MonitorConversation,
    MonitorGrading,
    MonitorSetting,
    MonitorVerdict,
    RedTeamFinding,
)
from policylab.store.models.policy import PolicyVersion
from policylab.store.models.users import User
from policylab.store.models.verdicts import VerdictRecord

__all__ = [
    "Adjudication",
    "Assignment",
    "Base",
    "Campaign",
    "CampaignItem",
    "EvalSet",
    "GraderValidation",
    "Item",
    "JSONType",
    "Label",
    "MonitorCluster",
    "MonitorClusterMember",
    "MonitorConversation",
    "MonitorGrading",
    "MonitorSetting",
    "MonitorVerdict",
    "PolicyVersion",
    "Qualification",
    "RedTeamFinding",
    "Response",
    "ResponseCache",
    "Run",
    "User",
    "VerdictRecord",
]
