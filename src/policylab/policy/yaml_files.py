"""Reading a small YAML file into a pydantic model, with problems located by file, line and field.

For the files that sit beside a policy (frameworks, agent tasks, agent scripts): the same
positions and "did you mean" hints as the policy loader gives.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from policylab.errors import InputError, Location, Problem
from policylab.policy.loader import _plain, _problems_from

__all__ = ["read_yaml_model"]

M = TypeVar("M", bound=BaseModel)


def read_yaml_model(path: str | Path, model: type[M], *, what: str, starts_with: str) -> M:
    """`model` validated from the YAML (or JSON) file at `path`.

    Raises `InputError` listing every problem; `what` names the file's kind in the message and
    `starts_with` says, for a file that is not a mapping, which keys it should begin with.
    """
    file = Path(path)
    title = f"{what} {file}"
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(
            [Problem("file not found", Location(file), "check the path")], what=title
        ) from None
    except UnicodeDecodeError as exc:
        raise InputError(
            [Problem(f"not UTF-8 text: {exc}", Location(file), None)], what=title
        ) from exc
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        node = yaml.load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file)
        raise InputError(
            [
                Problem(
                    f"YAML error: {getattr(exc, 'problem', None) or exc}",
                    where,
                    "check indentation, colons and quotes",
                )
            ],
            what=title,
        ) from exc
    if not isinstance(node, CommentedMap):
        raise InputError(
            [
                Problem(
                    f"a {what} is a YAML mapping",
                    Location(file, 1, 1),
                    f"start it with {starts_with}",
                )
            ],
            what=title,
        )
    try:
        return model.model_validate(_plain(node))
    except ValidationError as exc:
        raise InputError(_problems_from(exc, file, node, model), what=title) from exc
