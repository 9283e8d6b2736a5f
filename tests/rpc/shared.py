"""One wizd shared by the tests of a module (starting one costs ~0.5 s).

Module-scoped fixtures are set up before the autouse function-scoped
``clean_environ``, so the daemon's environment is made private here, by hand.
Tests that share a daemon use names of their own and never depend on what
another test created.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support import postgres
from tests.support.daemon import Wizd

_LEAKY = ("WIZ_SOCKET", "WIZ_DB", "WIZ_CONFIG", "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID",
          "WATCHDOG_USEC", "JOURNAL_STREAM", "OPENAI_API_KEY")


def private_wizd(base: Path, **kwargs: Any) -> Wizd:
    """A Wizd (not started) whose XDG folders are under ``base`` and that inherits no WIZ_*."""
    env = {}
    for var, sub in (("XDG_RUNTIME_DIR", "xdg-run"), ("XDG_DATA_HOME", "xdg-data"),
                     ("XDG_CONFIG_HOME", "xdg-config"), ("XDG_STATE_HOME", "xdg-state")):
        (base / sub).mkdir(parents=True, mode=0o700, exist_ok=True)
        env[var] = str(base / sub)
    extra: dict[str, str] = kwargs.pop("env", {})
    w = Wizd(base, env=env | extra, **kwargs)
    for name in _LEAKY:
        if name not in extra:
            w.env.pop(name, None)
    return w


@contextmanager
def shared_wizd(base: Path, engine: str = "sqlite") -> Iterator[Wizd]:
    """A started wizd on ``engine`` (tests/support/engines.py), closed after."""
    with contextlib.ExitStack() as stack:
        extra = []
        if engine == "postgresql":
            extra = ["--db", stack.enter_context(postgres.database())]
        w = private_wizd(base, extra_args=extra)
        stack.callback(w.close)
        yield w.start()


def unique(prefix: str) -> str:
    """A name no other test of the shared daemon uses."""
    return f"{prefix}-{os.urandom(4).hex()}"
