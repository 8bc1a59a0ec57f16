"""Write a policy out as a policy YAML file that `load_policy` reads back unchanged.

Block style throughout, keys in the schema's order, fields left at their defaults omitted, long
lines never folded, and every multi-line string (Markdown) as a literal block (`|`), so the file
reads and diffs like the source text. A string a literal block cannot hold (a tab, trailing spaces
on a line) falls back to a quoted scalar; `load_policy(dump).policy == policy` holds either way.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import LiteralScalarString, SingleQuotedScalarString

from policylab.errors import InputError, Location, Problem
from policylab.policy.schema import Policy, PolicyFile

# No folding: ruamel folds a long plain scalar at a space, and a run of spaces at the fold is lost.
_WIDTH = 1_000_000
# Plain in YAML 1.2 (which ruamel reads), but booleans or null to YAML 1.1 readers such as PyYAML.
_YAML11_WORDS = frozenset(["y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"])


def policy_yaml(policy: Policy) -> str:
    """The policy as the text of a root policy file (no includes)."""
    data = policy.model_dump(mode="json", exclude_defaults=True, exclude_none=True)
    for key in ("id", "version", "title", "scope", "owners"):
        data.setdefault(key, getattr(policy, key))  # required in a file, even when empty
    _check_loadable(policy, data)
    yaml = YAML(typ="rt")
    yaml.default_flow_style = False
    yaml.width = _WIDTH
    yaml.indent(mapping=2, sequence=4, offset=2)
    out = io.StringIO()
    yaml.dump(_literal_blocks(data), out)
    return out.getvalue()


def dump_policy_yaml(policy: Policy, path: str | Path) -> Path:
    """Write the policy to `path` (UTF-8, parents created); returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(policy_yaml(policy), encoding="utf-8")
    return target


def _literal_blocks(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _literal_blocks(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_literal_blocks(v) for v in value]
    if isinstance(value, str) and "\n" in value:
        return LiteralScalarString(value)
    if isinstance(value, str) and value.lower() in _YAML11_WORDS:
        return SingleQuotedScalarString(value)
    return value


def _check_loadable(policy: Policy, data: dict[str, Any]) -> None:
    """A policy the root-file schema would reject (e.g. no owners) is refused before writing."""
    try:
        PolicyFile.model_validate(data)
    except ValidationError as exc:
        problems = [
            Problem(
                err["msg"],
                Location(field=".".join(str(p) for p in err["loc"])),
                "fix the policy before writing it (see docs/policy-format.md)",
            )
            for err in exc.errors(include_url=False)
        ]
        raise InputError(problems, what=f"policy {policy.id} (not written)") from None
