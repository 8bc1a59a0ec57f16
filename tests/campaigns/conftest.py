from __future__ import annotations

import sys
from pathlib import Path

# factory.py builds campaigns for these tests and for tests/web and tests/cli.
sys.path.insert(0, str(Path(__file__).resolve().parent))
