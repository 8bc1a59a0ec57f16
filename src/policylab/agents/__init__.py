"""Agents under evaluation: local tools, tasks, the interactive target, replays and a scripted agent.

`tools` gives an agent a sandboxed file system, a fake web, a mailbox and a payment account, all
local and deterministic; `tasks` reads task files; `loop` runs any target model as an agent
against those tools and records the whole transcript; `replay` reproduces recorded transcripts;
`scripted` is a deterministic test agent; `grading` stores an agent run's action verdicts.
"""

from policylab.agents.loop import AgentTarget, Episode, run_episode
from policylab.agents.models import is_recorded, load_agent_model
from policylab.agents.replay import RecordedModel, split_transcript
from policylab.agents.scripted import ScriptedModel
from policylab.agents.tasks import Task, TaskSet, load_tasks
from policylab.agents.tools import GROUPS, TOOL_NAMES, Environment, Setup, parse_groups, tool_names

__all__ = [
    "GROUPS",
    "TOOL_NAMES",
    "AgentTarget",
    "Environment",
    "Episode",
    "RecordedModel",
    "ScriptedModel",
    "Setup",
    "Task",
    "TaskSet",
    "is_recorded",
    "load_agent_model",
    "load_tasks",
    "parse_groups",
    "run_episode",
    "split_transcript",
    "tool_names",
]
