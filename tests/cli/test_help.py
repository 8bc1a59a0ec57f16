"""`policylab --help` and every command's help, as a user reads them in a terminal."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from policylab.cli import PANELS, command, reflow


def test_reflow_joins_wrapped_lines_and_keeps_lists_and_commands() -> None:
    text = "First line.\n\nA paragraph wrapped\nover two lines.\n\n- an item\n  continued\n- another\n$ policylab run"
    assert reflow(text) == (
        "First line.\n\nA paragraph wrapped over two lines.\n\n"
        "- an item continued\n- another\n$ policylab run"
    )
    assert reflow("\x08\nkept\nas is") == "\x08\nkept\nas is"


def _walk(cmd: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    found = [(path, cmd)]
    for name, sub in getattr(cmd, "commands", {}).items():
        found += _walk(sub, (*path, name))
    return found


def test_every_help_paragraph_is_prose_without_hard_line_breaks() -> None:
    for path, cmd in _walk(command()):
        for paragraph in (cmd.help or "").split("\n\n"):
            lines = paragraph.split("\n")
            ragged = [
                line
                for line in lines[1:]
                if line.strip()
                and not line.lstrip().startswith(("-", "*", "$", "\x08"))
                and not line.lstrip()[:1].isdigit()
            ]
            assert not ragged, f"policylab {' '.join(path)}: {ragged[0]!r} is a wrapped line"


def test_the_console_script_lists_the_loop_in_order() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "policylab", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={"COLUMNS": "100", "PATH": "/usr/bin:/bin"},
    ).stdout
    positions = [out.index(panel) for panel in PANELS]
    assert positions == sorted(positions)
    assert out.index("│ demo ") < out.index("│ init ") < out.index("│ policy ")
