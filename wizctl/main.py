"""``wizctl``'s entry point: the one place where errors become a single
``wizctl: error: ...`` line (or, with ``--json``, one JSON object) on stderr and
an exit code that tells kinds apart (``wizctl.exits``) — never a traceback.

``wizctl status`` is answered by ``wizctl.quick`` without importing typer (the
CLI framework costs most of a run's start-up, and typer builds pydantic
adapters for option values); everything else, ``--help`` included, goes
through the typer app in ``wizctl.cli``, imported only then.
"""

from __future__ import annotations

import sys

from . import exits, quick


def wants_json(argv: list[str]) -> bool:
    """Whether ``--json`` is among the options (not after ``--``)."""
    return "--json" in (argv[:argv.index("--")] if "--" in argv else argv)


def main(argv: list[str] | None = None) -> int:
    """Run wizctl and return its exit code (the table is in ``wizctl.exits``)."""
    return run(sys.argv[1:] if argv is None else list(argv))


def run(args: list[str], *, fast: bool = True) -> int:
    """Run wizctl on ``args``; ``fast=False`` sends even ``status`` through typer
    (the tests hold the two paths to the same output).

    A failure is told once on stderr: one line (click's usage text for a usage
    error), or with ``--json`` one JSON object. Never a traceback, but for a bug.
    """
    as_json = wants_json(args)
    try:
        code = quick.run(args) if fast else None
        if code is None:
            from .cli import run as run_app

            code = run_app(args)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt:
        return exits.INTERRUPTED
    except Exception as exc:
        found = exits.failure(exc)
        if found is None:
            raise
        if as_json:
            sys.stderr.write(found.json() + "\n")
        elif exits.is_usage_error(exc):
            exc.show()  # type: ignore[attr-defined]  # click's usage line and hint
        else:
            sys.stderr.write(found.line() + "\n")
        return found.exit
    return code
