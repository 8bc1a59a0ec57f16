"""One interface for every grader: samples in, verdicts out.

A `Sample` is a request (an OpenAI-format conversation) and the response to judge. A `Verdict` is a
grader's judgement with its provenance (grader id and version, policy id and content hash), so a
stored verdict can be re-explained and re-graded.

Graders follow scikit-learn's conventions: every parameter is a plain constructor argument stored
under the same attribute name, so `grader_params(g)` can read them back and `build_grader(name,
params)` can rebuild the grader. `@grader("name")` records the class in `REGISTRY`, a plain dict.

The batch call `grade(samples)` is the primary entry point (it is what the CLI, validation and
cascade use). Graders whose work is CPU-bound implement `grade` and inherit `agrade` (run in a
worker thread) from `SyncGrader`; graders that wait on the network implement `agrade` and inherit
`grade` (an event loop per call) from `AsyncGrader`.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from policylab.chat import ChatMessage
from policylab.core import Behavior
from policylab.errors import PolicylabError
from policylab.policy.schema import Policy

__all__ = [
    "REGISTRY",
    "TRANSCRIPT_KEY",
    "AsyncGrader",
    "Grader",
    "Sample",
    "SyncGrader",
    "Verdict",
    "build_grader",
    "config_hash",
    "error_verdict",
    "grader",
    "grader_params",
    "recorded_params",
]

TRANSCRIPT_KEY = "transcript"
"""`Sample.metadata` key of the turns recorded after the request (a list of chat messages): an agent's
tool calls and their results, or a plain run's answer. The `actions` grader reads it; text graders
read `Sample.response`."""


class Sample(BaseModel):
    """A request and the response to judge.

    `category` and `expected_behavior` are hints from the item, when known: a grader uses them to
    decide whether a response violates the policy.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    messages: list[ChatMessage] = Field(
        description="The request: the conversation before the response."
    )
    response: str
    category: str | None = None
    expected_behavior: Behavior | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def request_text(self) -> str:
        """The request's user turns joined (the last turn carries the ask in most conversations)."""
        turns = [m.text for m in self.messages if m.role == "user"]
        return "\n\n".join(turns) if turns else "\n\n".join(m.text for m in self.messages)


class Verdict(BaseModel):
    """A grader's judgement of one response.

    `error` set means the grader could not judge: `behavior` and `violation` are then None, so the
    verdict never counts as compliant or safe.
    """

    model_config = ConfigDict(extra="forbid")

    sample_id: str
    behavior: Behavior | None = None
    violation: bool | None = Field(
        default=None,
        description="True/False when the grader knows the expected behaviour; else unknown.",
    )
    category: str | None = None
    rule_ids: list[str] = Field(default_factory=list)
    confidence: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Probability of the predicted behaviour (calibrated where the grader can).",
    )
    probabilities: dict[Behavior, float] | None = None
    rationale: str | None = None
    raw_output: str | None = None
    error: str | None = None
    grader_id: str
    grader_version: str
    policy_id: str | None = None
    policy_hash: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("probabilities")
    @classmethod
    def _check_probabilities(
        cls, value: dict[Behavior, float] | None
    ) -> dict[Behavior, float] | None:
        if value is None:
            return None
        if any(not 0.0 <= p <= 1.0 for p in value.values()):
            raise ValueError(f"probabilities must lie in [0, 1], got {value}")
        total = sum(value.values())
        if abs(total - 1.0) > 1e-3:
            raise ValueError(f"probabilities must sum to 1, got {total:.4f}")
        return value

    @model_validator(mode="after")
    def _error_means_no_judgement(self) -> Verdict:
        if self.error is not None and (self.behavior is not None or self.violation is not None):
            raise ValueError(
                "a verdict with `error` set carries no behaviour and no violation: "
                "an ungraded response must never count as compliant or safe"
            )
        return self

    @property
    def ok(self) -> bool:
        return self.error is None


def error_verdict(
    sample_id: str,
    error: str,
    *,
    grader_id: str,
    grader_version: str,
    policy: Policy | None = None,
    raw_output: str | None = None,
) -> Verdict:
    """A verdict that records a failure: no behaviour, no violation."""
    return Verdict(
        sample_id=sample_id,
        error=error,
        raw_output=raw_output,
        grader_id=grader_id,
        grader_version=grader_version,
        policy_id=policy.id if policy else None,
        policy_hash=policy.content_hash if policy else None,
    )


@runtime_checkable
class Grader(Protocol):
    """What every grader offers. `grade` keeps the order of `samples`: one verdict per sample."""

    @property
    def id(self) -> str:
        """The registered name, e.g. `local`."""
        ...

    @property
    def version(self) -> str:
        """Changes whenever the same inputs could get different verdicts."""
        ...

    def grade(self, samples: Sequence[Sample]) -> list[Verdict]: ...

    async def agrade(self, samples: Sequence[Sample]) -> list[Verdict]: ...


class SyncGrader:
    """Base for CPU-bound graders: implement `grade`; `agrade` runs it in a worker thread."""

    id: ClassVar[str]
    version: ClassVar[str]

    def grade(self, samples: Sequence[Sample]) -> list[Verdict]:
        raise NotImplementedError

    async def agrade(self, samples: Sequence[Sample]) -> list[Verdict]:
        return await asyncio.to_thread(self.grade, samples)


class AsyncGrader:
    """Base for graders that wait on I/O: implement `agrade`; `grade` runs it on a new event loop."""

    id: ClassVar[str]
    version: ClassVar[str]

    async def agrade(self, samples: Sequence[Sample]) -> list[Verdict]:
        raise NotImplementedError

    def grade(self, samples: Sequence[Sample]) -> list[Verdict]:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.agrade(samples))
        raise PolicylabError(
            f"{type(self).__name__}.grade() was called inside a running event loop",
            hint="await grader.agrade(samples) instead",
        )


# -- registry ------------------------------------------------------------------------------------

REGISTRY: dict[str, type[Any]] = {}
"""Grader classes by registered name. Populated by `@grader` when a grader module is imported."""

_T = TypeVar("_T")


def grader(name: str) -> Callable[[type[_T]], type[_T]]:
    """Register a grader class under `name`.

    The class must keep every constructor argument as an attribute of the same name (as
    scikit-learn's estimators do), so `grader_params` can read them back; this is checked here.
    """

    def register(cls: type[_T]) -> type[_T]:
        if name in REGISTRY and REGISTRY[name] is not cls:
            raise PolicylabError(f"grader name {name!r} is already registered by {REGISTRY[name]}")
        if getattr(cls, "id", None) != name:
            raise PolicylabError(f"{cls.__name__}.id must equal its registered name {name!r}")
        for param in _init_parameters(cls):
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                raise PolicylabError(
                    f"{cls.__name__}.__init__ takes *{param.name}: a grader's parameters must be "
                    "named, so they can be recorded and the grader rebuilt"
                )
        REGISTRY[name] = cls
        return cls

    return register


def _init_parameters(cls: type[Any]) -> list[inspect.Parameter]:
    return [p for p in inspect.signature(cls.__init__).parameters.values() if p.name != "self"]


def grader_params(obj: Any) -> dict[str, Any]:
    """The constructor arguments of a grader, read back from its attributes."""
    out: dict[str, Any] = {}
    for param in _init_parameters(type(obj)):
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue  # object.__init__ of a grader without parameters
        if not hasattr(obj, param.name):
            raise PolicylabError(
                f"{type(obj).__name__} does not keep its constructor argument {param.name!r} "
                "as an attribute of the same name"
            )
        out[param.name] = getattr(obj, param.name)
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if hasattr(value, "id") and hasattr(value, "version"):  # a nested grader
        return {"grader": value.id, "params": _jsonable(grader_params(value))}
    return str(value)


def recorded_params(obj: Any) -> dict[str, Any]:
    """The constructor arguments as JSON-ready values; a policy is recorded by id and hash."""
    out: dict[str, Any] = {}
    for key, value in grader_params(obj).items():
        if isinstance(value, Policy):
            out[key] = {"policy_id": value.id, "policy_hash": value.content_hash}
        else:
            out[key] = _jsonable(value)
    return out


def config_hash(obj: Any) -> str:
    """A short, stable digest of a grader's id, version and recorded parameters.

    Parameters a class lists in `runtime_params` (a cache folder, a concurrency limit) do not
    change verdicts and are left out.
    """
    skip: frozenset[str] = getattr(type(obj), "runtime_params", frozenset())
    params = {k: v for k, v in recorded_params(obj).items() if k not in skip}
    payload = {"grader": obj.id, "version": obj.version, "params": params}
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def build_grader(
    name: str, params: Mapping[str, Any] | None = None, *, policy: Policy | None = None
) -> Any:
    """A new grader of the registered class `name` with `params` as constructor arguments.

    `params` may be those recorded with a verdict (`recorded_params`): a policy recorded as
    `{"policy_id", "policy_hash"}` is replaced by `policy`, which must have that hash.
    """
    import policylab.graders  # noqa: F401  (importing the package registers the built-in graders)

    cls = REGISTRY.get(name)
    if cls is None:
        raise PolicylabError(
            f"no grader named {name!r}", hint=f"choose one of: {', '.join(sorted(REGISTRY))}"
        )
    known = {p.name for p in _init_parameters(cls)}
    unknown = sorted(set(params or {}) - known)
    if unknown:
        raise PolicylabError(
            f"grader {name!r} has no parameter(s) {unknown}",
            hint=f"its parameters are: {', '.join(sorted(known))}",
        )
    resolved = {k: _resolve_policy(k, v, policy) for k, v in (params or {}).items()}
    return cls(**resolved)


def _resolve_policy(key: str, value: Any, policy: Policy | None) -> Any:
    if not (isinstance(value, Mapping) and set(value) == {"policy_id", "policy_hash"}):
        return value
    if policy is None:
        raise PolicylabError(
            f"parameter {key!r} refers to policy {value['policy_id']} ({value['policy_hash'][:19]}…)",
            hint="pass that policy to rebuild the grader (policylab keeps stored versions by hash)",
        )
    if policy.content_hash != value["policy_hash"]:
        raise PolicylabError(
            f"parameter {key!r} was recorded with policy hash {value['policy_hash'][:19]}…, "
            f"but the policy given has {policy.content_hash[:19]}…",
            hint="rebuild with the policy version the verdicts were graded against",
        )
    return policy
