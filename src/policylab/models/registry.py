"""Model spec strings, parsed into target models.

openai:<model>[@<base_url>]   an OpenAI-compatible endpoint (default https://api.openai.com/v1);
                              the key comes from $OPENAI_API_KEY or the variable named by
                              `api_key_env` (local servers may need none)
replay:<file.jsonl>           recorded responses
local:smollm2                 SmolLM2-135M-Instruct on the CPU (also local:<file.gguf | hf-folder>)
echo                          a deterministic offline test double (repeats the prompt)
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from policylab.errors import PolicylabError
from policylab.models.base import TargetModel
from policylab.models.openai_compat import DEFAULT_BASE_URL

DEFAULT_KEY_ENV = "OPENAI_API_KEY"
KINDS = ("openai", "replay", "local", "echo")
_OPENAI = re.compile(r"^(?P<model>.+?)(?:@(?P<url>https?://.+))?$")
EXAMPLES = (
    "openai:gpt-4o-mini, openai:llama3@http://localhost:11434/v1, replay:answers.jsonl, "
    "local:smollm2, echo"
)


@dataclass(frozen=True)
class ModelSpec:
    """A parsed spec: the kind of model, its target (model name, file or path), and a base URL."""

    kind: str
    target: str = ""
    base_url: str | None = None

    def __str__(self) -> str:
        if self.kind == "echo":
            return "echo"
        if self.base_url:
            return f"{self.kind}:{self.target}@{self.base_url}"
        return f"{self.kind}:{self.target}"


def parse_spec(spec: str) -> ModelSpec:
    """Parse `spec`; raises PolicylabError naming what is wrong and the accepted forms."""
    text = spec.strip()
    if text == "echo":
        return ModelSpec("echo")
    kind, sep, rest = text.partition(":")
    if not sep or kind not in KINDS or kind == "echo" or not rest:
        raise PolicylabError(
            f"--model {spec!r}: expected one of openai:<model>[@<base_url>], replay:<file.jsonl>, "
            "local:smollm2 (or local:<path>), echo",
            hint=f"for example {EXAMPLES}",
        )
    if kind == "openai":
        match = _OPENAI.match(rest)
        assert match is not None  # the pattern matches any non-empty text
        return ModelSpec("openai", match["model"], (match["url"] or DEFAULT_BASE_URL).rstrip("/"))
    return ModelSpec(kind, rest)


def load_model(
    spec: str | ModelSpec,
    *,
    api_key_env: str | None = None,
    timeout: float = 60.0,
    concurrency: int = 64,
    env: Mapping[str, str] | None = None,
) -> TargetModel:
    """The target model a spec names, ready to use (connections open lazily on the first call)."""
    parsed = spec if isinstance(spec, ModelSpec) else parse_spec(spec)
    environ = os.environ if env is None else env
    if parsed.kind == "echo":
        from policylab.models.echo import EchoModel

        return EchoModel()
    if parsed.kind == "replay":
        from policylab.models.replay import ReplayModel

        return ReplayModel(parsed.target)
    if parsed.kind == "local":
        from policylab.models.local import LocalModel

        return LocalModel(parsed.target)
    from policylab.models.openai_compat import OpenAICompatModel

    key_env = api_key_env or DEFAULT_KEY_ENV
    key = environ.get(key_env)
    base_url = parsed.base_url or DEFAULT_BASE_URL
    if not key and (api_key_env or base_url == DEFAULT_BASE_URL):
        raise PolicylabError(
            f"--model {parsed}: the API key variable ${key_env} is not set",
            hint=f"export {key_env}=... (or name another variable with --api-key-env)",
        )
    return OpenAICompatModel(
        parsed.target, base_url, api_key=key, timeout=timeout, max_connections=concurrency
    )
