"""Errors to one line and an exit code, in one place; SIGTERM stops a run as Ctrl-C does."""

from __future__ import annotations

import os
import signal
import threading
import traceback

import click

from gate.core.errors import ExitCode, GateError

EXIT_CODES = """\b
Exit codes:
  0  PASS: every rule of the policy holds
  1  FAIL: a rule failed, a measurement broke, or a blocking finding (NaN weights, unmet declared sparsity)
  2  usage or input error (bad option, missing or corrupt checkpoint, bad policy or data)
  3  INCONCLUSIVE: the evidence is too thin to pass (too few items, interval too wide, metric missing)
  4  internal error (a bug in gate; please report it)
  130/143  stopped by SIGINT (Ctrl-C) / SIGTERM: no report written"""

MAX_MESSAGE = 2_000  # characters of an error line


def one_line(message: str) -> str:
    """A message as one printable line: names from inputs may hold newlines, control characters or surrogates."""
    text = "".join(c if c.isprintable() else c.encode("unicode_escape", "backslashreplace").decode("ascii")
                   for c in message)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE] + "…"


class _Terminated(BaseException):
    """SIGTERM, raised where the main thread is; like KeyboardInterrupt, no `except Exception` swallows it."""


def _on_sigterm(signum, frame):
    raise _Terminated()


class GateGroup(click.Group):
    """Translates domain errors into one line and an exit code, in one place."""

    def invoke(self, ctx: click.Context):
        # SIGTERM stops a run as Ctrl-C does: reports are written atomically, so none is left half-written.
        outermost = ctx.parent is None and threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _on_sigterm) if outermost else None
        try:
            return super().invoke(ctx)
        except GateError as exc:
            click.echo(f"gate: error: {one_line(str(exc))}", err=True)
            ctx.exit(int(exc.exit_code))
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            click.echo("gate: stopped by SIGINT (Ctrl-C); no report written; the base's results measured so far "
                       "stay cached (unless --no-cache): rerun to resume", err=True)
            ctx.exit(int(ExitCode.INTERRUPTED))
        except _Terminated:
            click.echo("gate: stopped by SIGTERM; no report written; the base's results measured so far "
                       "stay cached (unless --no-cache): rerun to resume", err=True)
            ctx.exit(int(ExitCode.TERMINATED))
        except Exception as exc:  # a bug: say so plainly; the traceback only on request
            if os.environ.get("GATE_DEBUG"):
                traceback.print_exc()
            click.echo(one_line(f"gate: internal error: {type(exc).__name__}: {exc} (set GATE_DEBUG=1 for the traceback)"),
                       err=True)
            ctx.exit(int(ExitCode.INTERNAL))
        finally:
            if outermost:
                signal.signal(signal.SIGTERM, previous)
