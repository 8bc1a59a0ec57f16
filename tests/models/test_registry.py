"""Model spec strings."""

from __future__ import annotations

from pathlib import Path

import pytest

from policylab.errors import PolicylabError
from policylab.models.echo import EchoModel
from policylab.models.openai_compat import OpenAICompatModel
from policylab.models.registry import ModelSpec, load_model, parse_spec
from policylab.models.replay import ReplayModel


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("echo", ModelSpec("echo")),
        ("openai:gpt-4o-mini", ModelSpec("openai", "gpt-4o-mini", "https://api.openai.com/v1")),
        (
            "openai:llama3:8b@http://localhost:11434/v1/",
            ModelSpec("openai", "llama3:8b", "http://localhost:11434/v1"),
        ),
        (
            "openai:meta-llama/Llama-3.1-8B@https://host:8000/v1",
            ModelSpec("openai", "meta-llama/Llama-3.1-8B", "https://host:8000/v1"),
        ),
        ("replay:runs/answers.jsonl", ModelSpec("replay", "runs/answers.jsonl")),
        ("local:smollm2", ModelSpec("local", "smollm2")),
        ("local:/models/qwen", ModelSpec("local", "/models/qwen")),
    ],
)
def test_specs_parse(spec: str, parsed: ModelSpec) -> None:
    assert parse_spec(spec) == parsed


@pytest.mark.parametrize("spec", ["gpt-4o", "openai:", "remote:x", "echo:x", ""])
def test_bad_specs_name_the_accepted_forms(spec: str) -> None:
    with pytest.raises(PolicylabError, match=r"expected one of openai:<model>"):
        parse_spec(spec)


def test_openai_key_comes_from_the_environment() -> None:
    model = load_model("openai:gpt-4o-mini", env={"OPENAI_API_KEY": "sk-1"})
    assert isinstance(model, OpenAICompatModel)
    assert model._headers["Authorization"] == "Bearer sk-1"
    assert "sk-1" not in model.name
    other = load_model("openai:m@http://h/v1", api_key_env="MY_KEY", env={"MY_KEY": "k2"})
    assert isinstance(other, OpenAICompatModel)
    assert other._headers["Authorization"] == "Bearer k2"


def test_a_local_server_needs_no_key_but_openai_does() -> None:
    local = load_model("openai:llama3@http://localhost:11434/v1", env={})
    assert isinstance(local, OpenAICompatModel)
    assert "Authorization" not in local._headers
    with pytest.raises(PolicylabError, match=r"\$OPENAI_API_KEY is not set"):
        load_model("openai:gpt-4o-mini", env={})
    with pytest.raises(PolicylabError, match=r"\$MY_KEY is not set"):
        load_model("openai:m@http://localhost:1/v1", api_key_env="MY_KEY", env={})


def test_echo_and_replay_load(tmp_path: Path) -> None:
    assert isinstance(load_model("echo"), EchoModel)
    path = tmp_path / "r.jsonl"
    path.write_text('{"id": "a", "response": "yes"}\n', encoding="utf-8")
    model = load_model(f"replay:{path}")
    assert isinstance(model, ReplayModel)
    assert model.name == f"replay:{path.resolve()}"
