"""A process that has imported wizd once and forks a fresh wizd for each start.

Run by ``tests.support.daemon`` (one per test worker, as a script: it imports
nothing of the tests). Starting ``python -m wizd`` costs most of its start-up
in Python itself and in wizd's imports (SQLAlchemy, pydantic, openai ...);
a fork of this process skips both. What it forks is still a real, separate
wizd process: its own pid, socket, database, signals and exit status, run by
the same ``wizd.cli.main`` as the ``wizd`` command, with the environment,
arguments, working folder and umask the test asked for.

Requests and answers are JSON lines on stdin and stdout:

    {"start": [argv...], "env": {...}, "log": PATH, "cwd": PATH, "umask": N}
        -> {"pid": N}       the forked wizd (a child of this process); its
                            stdout and stderr go to the log, or stderr to
                            the file "err" names if the request has one
    {"reap": N}
        -> {"status": S}    its wait status, once it has exited (the caller
                            waits on a pidfd first, so this does not block)
"""

from __future__ import annotations

import atexit
import gc
import importlib
import json
import os
import sys

# Everything `wizd` imports on its way to serving and to its first reply
# (the event loops anyio picks at run time, the OpenAI SDK wizd imports on
# first use, SQLAlchemy's SQLite dialects that create_engine loads, typer's
# pydantic adapters for the options), so that no child pays for it.
import anyio._backends._asyncio  # noqa: F401
import anyio._backends._trio  # noqa: F401
import anyio._core._signals  # noqa: F401
import openai  # noqa: F401
import sqlalchemy.dialects.sqlite.aiosqlite  # noqa: F401
import sqlalchemy.dialects.sqlite.pysqlite  # noqa: F401
import typer._adapters  # noqa: F401

import wizd.app  # noqa: F401
import wizd.cli
import wizd.logs  # noqa: F401

# What a wizd imports on its first reply, where wizd and the SDK import lazily:
# wizd's provider (httpx, which brings rich and pygments for its command-line
# tool), the SDK's chat resources (loaded on first use) and streaming helpers,
# and the transport its HTTP client builds (httpcore, h11, truststore). A wizd
# that replied once spent most of its CPU importing them.
_FIRST_REPLY = ("wizd.llm.openai_provider", "wizd.llm.offline", "openai.resources.chat.chat",
                "openai.resources.chat.completions.completions", "openai.lib.streaming.chat",
                "httpcore2", "httpcore", "h11", "truststore", "certifi", "jiter", "encodings.idna",
                "concurrent.futures.thread", "pwd", "typer._click.decorators")
for _name in _FIRST_REPLY:
    try:
        importlib.import_module(_name)
    except ImportError:  # a transport the installed SDK does not use
        pass


def _child(request: dict[str, object]) -> None:
    """Turn this forked process into the asked-for wizd's surroundings."""
    log = os.open(str(request["log"]), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(os.open(str(request["err"]), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            if request.get("err") else log, 2)
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))  # as Popen's close_fds: our pipes too
    env = request["env"]
    assert isinstance(env, dict)
    os.environ.clear()
    os.environ.update(env)
    os.chdir(str(request["cwd"]))
    umask = request["umask"]
    assert isinstance(umask, int)
    os.umask(umask)
    argv = request["start"]
    assert isinstance(argv, list)
    sys.argv = ["wizd", *argv]


def serve() -> None:
    """Answer requests until stdin closes; returns in each forked child, ready to run wizd."""
    requests = sys.stdin.buffer
    answers = sys.stdout.fileno()
    for line in requests:
        request = json.loads(line)
        if "reap" in request:
            _, status = os.waitpid(request["reap"], 0)
            answer = {"status": status}
        else:
            pid = os.fork()
            if pid == 0:
                _child(request)
                return
            answer = {"pid": pid}
        os.write(answers, json.dumps(answer).encode() + b"\n")
    sys.exit(0)


def _exit_code(code: object) -> int:
    """The exit status Python gives ``SystemExit(code)`` (a message is printed, status 1)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def run_wizd() -> None:
    """In a forked child: run wizd as `python -m wizd` would, and exit with its status.

    What Python does at exit is done (atexit functions: logging's flush
    among them; the standard streams flushed), except tearing down the
    modules: with SQLAlchemy, pydantic and the OpenAI SDK loaded, that alone
    costs a quarter of a second, and no wizd behaviour depends on it.
    """
    try:
        wizd.cli.main()
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc.code)
    except BaseException:
        sys.excepthook(*sys.exc_info())
        code = 1
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    # What is imported stays put: the children's garbage collections leave it
    # alone, so its pages are shared with them instead of copied into each.
    gc.freeze()
    serve()
    run_wizd()
