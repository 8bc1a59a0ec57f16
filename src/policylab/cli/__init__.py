"""The `policylab` command line: a thin shell over the library.

Each command group lives in its own module and is registered here, in the order of the loop a policy
team lives in: write the policy, measure models against it, check the measurement with human data,
watch the real world, report.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import typer
from typer.core import TyperGroup

from policylab import __version__
from policylab.cli import agent as agent_cmd
from policylab.cli import agreement as agreement_cmd
from policylab.cli import campaign as campaign_cmd
from policylab.cli import demo as demo_cmd
from policylab.cli import grade as grade_cmd
from policylab.cli import items as items_cmd
from policylab.cli import monitor as monitor_cmd
from policylab.cli import policy as policy_cmd
from policylab.cli import redteam as redteam_cmd
from policylab.cli import report as report_cmd
from policylab.cli import results as results_cmd
from policylab.cli import run as run_cmd
from policylab.cli import runs as runs_cmd
from policylab.cli import serve as serve_cmd
from policylab.cli import user as user_cmd
from policylab.cli import workspace as workspace_cmd

PANELS = [
    "Start here",
    "1. Policy as code",
    "2. Measure models",
    "3. Human data",
    "4. Watch the real world",
    "5. Report",
]

# Within a panel, these come first, in this order (the order a user meets them).
FIRST_IN_PANEL = ["demo", "init", "items", "run", "runs", "grade", "validate"]


class _LoopOrder(TyperGroup):
    """Lists commands panel by panel, in the order of the loop, whatever the order of registration."""

    def list_commands(self, ctx: Any) -> list[str]:
        def rank(name: str) -> tuple[int, int]:
            panel = getattr(self.commands[name], "rich_help_panel", None)
            first = PANELS.index(panel) if panel in PANELS else len(PANELS)
            return first, FIRST_IN_PANEL.index(name) if name in FIRST_IN_PANEL else 99

        return sorted(super().list_commands(ctx), key=rank)  # sorted() is stable


app = typer.Typer(
    name="policylab",
    cls=_LoopOrder,
    help=(
        "policylab: write AI behaviour policies as code, measure models against them, "
        "and keep the measurement honest with human labels."
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"policylab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details."),
) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s")


# Start here
app.command("demo", rich_help_panel="Start here")(demo_cmd.demo)
app.command("init", rich_help_panel="Start here")(workspace_cmd.init)
# 1. Policy as code
app.add_typer(policy_cmd.app, name="policy", rich_help_panel="1. Policy as code")
app.add_typer(items_cmd.app, name="items", rich_help_panel="2. Measure models")
app.command("run", rich_help_panel="2. Measure models")(run_cmd.run)
app.add_typer(runs_cmd.app, name="runs", rich_help_panel="2. Measure models")
app.command("grade", rich_help_panel="2. Measure models")(grade_cmd.grade)
app.command("validate", rich_help_panel="2. Measure models")(grade_cmd.validate)
app.command("results", rich_help_panel="2. Measure models")(results_cmd.results)
app.command("gate", rich_help_panel="2. Measure models")(results_cmd.gate)
app.command("compare", rich_help_panel="2. Measure models")(results_cmd.compare)
app.add_typer(agent_cmd.app, name="agent", rich_help_panel="2. Measure models")
app.command("agreement", rich_help_panel="3. Human data")(agreement_cmd.agreement)
app.add_typer(campaign_cmd.app, name="campaign", rich_help_panel="3. Human data")
app.add_typer(user_cmd.app, name="user", rich_help_panel="3. Human data")
app.command("serve", rich_help_panel="3. Human data")(serve_cmd.serve)
app.add_typer(monitor_cmd.app, name="monitor", rich_help_panel="4. Watch the real world")
app.add_typer(redteam_cmd.app, name="redteam", rich_help_panel="4. Watch the real world")
app.command("report", rich_help_panel="5. Report")(report_cmd.report)


_NEW_LINE = re.compile(r"^(\s*[-*] |\s*\d+\. |\s*\$ )")


def reflow(text: str) -> str:
    """Docstring paragraphs as prose: wrapped lines joined, list items and `$ ` lines kept.

    Typer (0.29) keeps the single line breaks of a docstring's later paragraphs, and Rich then
    wraps those lines again to the terminal's width, leaving ragged half-lines.
    """
    paragraphs = []
    for paragraph in text.split("\n\n"):
        if paragraph.startswith("\x08"):  # click's mark for a paragraph kept as written
            paragraphs.append(paragraph)
            continue
        lines: list[str] = []
        for line in paragraph.split("\n"):
            if lines and line.strip() and not _NEW_LINE.match(line):
                lines[-1] = f"{lines[-1].rstrip()} {line.strip()}"
            else:
                lines.append(line)
        paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)


def _reflow_tree(command: Any) -> None:
    # Typer 0.29 builds its commands on its own copy of click: walked by attribute, not by type.
    if command.help:
        command.help = reflow(command.help)
    for sub in getattr(command, "commands", {}).values():
        _reflow_tree(sub)


def command() -> Any:
    """The click command behind `app`, its help texts reflowed (see `reflow`)."""
    cli = typer.main.get_command(app)
    _reflow_tree(cli)
    return cli


def main() -> None:
    """Entry point of the `policylab` console script."""
    command()(prog_name="policylab")
