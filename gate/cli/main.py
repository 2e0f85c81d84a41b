"""The `gate` command line: the group, its exit codes, and its commands.

Each command parses its options and delegates; errors become one line and an
exit code in one place (gate/cli/exits.py). `gate check` lives in check.py,
the other commands in commands.py.
"""

from __future__ import annotations

import click

from gate import __version__
from gate.cli.check import check
from gate.cli.commands import cache, demo, models, policy, report
from gate.cli.exits import EXIT_CODES, GateGroup, one_line

__all__ = ["main", "one_line"]


@click.group(cls=GateGroup, epilog=EXIT_CODES)
@click.version_option(__version__, prog_name="gate")
def main() -> None:
    """Validate a pruned or quantized LLM checkpoint against its dense base model."""


for command in (check, report, policy, demo, cache, models):
    main.add_command(command)
