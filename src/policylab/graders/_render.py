"""Rendering the grader templates in `policylab/templates/graders/`."""

from __future__ import annotations

import functools
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined


@functools.cache
def _environment() -> Environment:
    # Plain text prompts: no HTML escaping, and a missing variable is an error, not an empty string.
    return Environment(
        loader=PackageLoader("policylab", "templates"),
        autoescape=False,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


def render(name: str, **context: Any) -> str:
    """Render `templates/graders/<name>`."""
    return _environment().get_template(f"graders/{name}").render(**context)
