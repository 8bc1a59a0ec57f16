"""The grader interface: the verdict invariant, the registry and rebuilding a grader from a record."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import ClassVar

import pytest
from pydantic import ValidationError

from policylab.chat import user
from policylab.core import Behavior
from policylab.errors import PolicylabError
from policylab.graders import REGISTRY, build_grader, config_hash, grader_params
from policylab.graders.base import AsyncGrader, Sample, SyncGrader, Verdict, grader, recorded_params
from policylab.graders.cascade import CascadeGrader
from policylab.graders.local import LocalGrader
from policylab.graders.rules import RulesGrader
from policylab.policy.schema import Policy


def _verdict(**kw: object) -> Verdict:
    return Verdict(sample_id="s", grader_id="g", grader_version="1", **kw)  # type: ignore[arg-type]


def test_an_error_verdict_has_no_behaviour_or_violation() -> None:
    assert _verdict(error="boom").behavior is None
    with pytest.raises(ValidationError, match="never count as compliant or safe"):
        _verdict(error="boom", behavior=Behavior.REFUSE)
    with pytest.raises(ValidationError, match="never count"):
        _verdict(error="boom", violation=False)


def test_probabilities_must_be_a_distribution() -> None:
    ok = _verdict(
        behavior=Behavior.COMPLY, probabilities={Behavior.COMPLY: 0.7, Behavior.REFUSE: 0.3}
    )
    assert ok.probabilities is not None
    with pytest.raises(ValidationError, match="sum to 1"):
        _verdict(probabilities={Behavior.COMPLY: 0.7, Behavior.REFUSE: 0.7})
    with pytest.raises(ValidationError):
        _verdict(confidence=1.5)


def test_builtin_graders_are_registered() -> None:
    assert {"rules", "local", "llm", "cascade"} <= set(REGISTRY)


def test_registry_rejects_unrecordable_classes() -> None:
    with pytest.raises(PolicylabError, match="must equal its registered name"):

        @grader("other-name")
        class _Bad(SyncGrader):
            id: ClassVar[str] = "bad"
            version: ClassVar[str] = "1"

    with pytest.raises(PolicylabError, match="must be named"):

        @grader("kw")
        class _Kw(SyncGrader):
            id: ClassVar[str] = "kw"
            version: ClassVar[str] = "1"

            def __init__(self, **kwargs: object) -> None:
                self.kwargs = kwargs


def test_params_round_trip_through_the_registry(acme: Policy) -> None:
    local = LocalGrader(acme, C=0.5, features="response+rules", cache_dir="/tmp/x")
    params = recorded_params(local)
    assert params["policy"] == {"policy_id": acme.id, "policy_hash": acme.content_hash}
    rebuilt = build_grader("local", params, policy=acme)
    assert grader_params(rebuilt) == grader_params(local)
    assert config_hash(rebuilt) == config_hash(local)
    # The cache folder is a runtime setting: it does not change the configuration hash.
    assert config_hash(LocalGrader(acme, C=0.5, features="response+rules")) == config_hash(local)
    assert config_hash(LocalGrader(acme, C=2.0)) != config_hash(local)


def test_rebuilding_needs_the_same_policy(acme: Policy) -> None:
    params = recorded_params(RulesGrader(acme))
    with pytest.raises(PolicylabError, match="pass that policy"):
        build_grader("rules", params)
    other = acme.model_copy(update={"title": "changed"})
    with pytest.raises(PolicylabError, match="recorded with policy hash"):
        build_grader("rules", params, policy=other)


def test_build_grader_names_unknown_things() -> None:
    with pytest.raises(PolicylabError, match="no grader named"):
        build_grader("nope")
    with pytest.raises(PolicylabError, match="no parameter"):
        build_grader("rules", {"colour": "red"})


def test_a_cascade_records_and_rebuilds_its_stages() -> None:
    cascade = CascadeGrader([RulesGrader(), LocalGrader(C=3.0)], [0.8])
    params = recorded_params(cascade)
    assert params["stages"][1] == {"grader": "local", "params": recorded_params(LocalGrader(C=3.0))}
    rebuilt = build_grader("cascade", params)
    assert isinstance(rebuilt, CascadeGrader)
    assert config_hash(rebuilt) == config_hash(cascade)


class _Upper(SyncGrader):
    id: ClassVar[str] = "upper"
    version: ClassVar[str] = "1"

    def grade(self, samples: Sequence[Sample]) -> list[Verdict]:
        return [
            Verdict(sample_id=s.id, behavior=Behavior.COMPLY, grader_id=self.id, grader_version="1")
            for s in samples
        ]


class _Async(AsyncGrader):
    id: ClassVar[str] = "async"
    version: ClassVar[str] = "1"

    async def agrade(self, samples: Sequence[Sample]) -> list[Verdict]:
        await asyncio.sleep(0)
        return [
            Verdict(sample_id=s.id, behavior=Behavior.REFUSE, grader_id=self.id, grader_version="1")
            for s in samples
        ]


SAMPLES = [Sample(id=str(i), messages=[user("q")], response="a") for i in range(3)]


async def test_sync_grader_gets_an_async_adapter() -> None:
    verdicts = await _Upper().agrade(SAMPLES)
    assert [v.sample_id for v in verdicts] == ["0", "1", "2"]


def test_async_grader_gets_a_sync_adapter() -> None:
    assert [v.behavior for v in _Async().grade(SAMPLES)] == [Behavior.REFUSE] * 3


async def test_sync_adapter_refuses_to_nest_event_loops() -> None:
    with pytest.raises(PolicylabError, match=r"await grader\.agrade"):
        _Async().grade(SAMPLES)


def test_request_text_joins_user_turns() -> None:
    from policylab.chat import assistant

    s = Sample(id="x", messages=[user("a"), assistant("b"), user("c")], response="r")
    assert s.request_text == "a\n\nc"
