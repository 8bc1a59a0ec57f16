"""The example month of deployment logs (`examples/monitor/month_of_logs.py`), for the tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_PATH = Path(__file__).resolve().parents[2] / "examples" / "monitor" / "month_of_logs.py"
_spec = importlib.util.spec_from_file_location("policylab_example_month_of_logs", _PATH)
assert _spec is not None
assert _spec.loader is not None
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)

START = _module.START
SHIFT_DAY = _module.SHIFT_DAY
month_of_logs = _module.month_of_logs
conversation = _module.conversation

__all__ = ["SHIFT_DAY", "START", "conversation", "month_of_logs"]
