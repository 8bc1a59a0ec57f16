"""Turning user arrays of behaviours into validated integer codes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from policylab.core import Behavior
from policylab.errors import PolicylabError

BEHAVIORS: tuple[Behavior, ...] = (Behavior.COMPLY, Behavior.PARTIAL, Behavior.REFUSE)
COMPLY, PARTIAL, REFUSE = 0, 1, 2
MISSING = -1


def is_missing(value: Any) -> bool:
    """None and float NaN (pandas' marker for a missing cell) both mean 'no value'."""
    return value is None or (isinstance(value, float) and value != value) or value is pd.NA


def behavior_codes(
    values: Sequence[Any] | NDArray[Any] | pd.Series, *, name: str, allow_missing: bool
) -> NDArray[np.int8]:
    """Codes 0/1/2 for comply/partial/refuse and -1 for missing (None/NaN).

    Raises on any other value, naming the array, the position and the value.
    """
    seq = values.tolist() if isinstance(values, pd.Series | np.ndarray) else list(values)
    codes = np.empty(len(seq), dtype=np.int8)
    lookup = {b.value: i for i, b in enumerate(BEHAVIORS)}
    for i, value in enumerate(seq):
        if is_missing(value):
            if not allow_missing:
                raise PolicylabError(
                    f"{name}[{i}] is missing; every item needs an expected behaviour",
                    hint="drop items without an expected behaviour before computing rates",
                )
            codes[i] = MISSING
            continue
        code = lookup.get(str(value).strip().lower())
        if code is None:
            raise PolicylabError(
                f"{name}[{i}] is {value!r}, not a behaviour",
                hint="use one of comply, partial, refuse (or None for a grader error)",
            )
        codes[i] = code
    return codes
