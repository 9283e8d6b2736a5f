"""``wizctl service install|uninstall``: wizd as a systemd user service.

``install`` writes ``wizd.service`` and ``wizd.socket`` (shipped in
``wizctl/units/``) into ``$XDG_CONFIG_HOME/systemd/user/`` with ``ExecStart=``
pointing at this installation's ``wizd``, reloads the user manager when one
answers, and says how to start it: socket-activated or always-on. It only
writes files and talks to ``systemctl``; wizd itself is never imported.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Annotated, TypedDict

import typer

from .client import WizClientError
from .text import dump_json

UNITS = ("wizd.service", "wizd.socket")
# The ExecStart= of the shipped unit (where `pip install --user` and pipx put
# wizd); install replaces it with the wizd it finds.
SHIPPED_EXEC = "ExecStart=%h/.local/bin/wizd"

NEXT_STEPS = """\
Next, start it one of two ways:
  socket-activated (starts on the first connection):
    systemctl --user enable --now wizd.socket
  always-on (starts when you log in):
    systemctl --user enable --now wizd.service
Then: wizctl status; logs: journalctl --user -u wizd.service
To keep it running while you are logged out: loginctl enable-linger $USER"""

app = typer.Typer(help="Run wizd as a systemd user service.", no_args_is_help=True,
                  rich_markup_mode=None, add_completion=False, pretty_exceptions_enable=False)


def unit_dir() -> Path:
    """Where systemd looks for the user's own units."""
    xdg = os.environ.get("XDG_CONFIG_HOME")
    return (Path(xdg) if xdg else Path.home() / ".config") / "systemd" / "user"


def find_wizd() -> Path | None:
    """The ``wizd`` of this installation: next to the running Python, else on PATH."""
    beside = Path(sys.executable).parent / "wizd"  # the venv's bin/, not the resolved python
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside.absolute()
    found = shutil.which("wizd")
    return Path(found).absolute() if found else None


def exec_path(path: Path) -> str:
    """``path`` as one word of a unit's ExecStart= (specifiers and variables escaped)."""
    text = str(path).replace("\\", "\\\\").replace("%", "%%").replace("$", "$$")
    if any(c.isspace() or c in "\"'" for c in text):
        text = '"' + text.replace('"', '\\"') + '"'
    return text


def shipped_unit(name: str) -> str:
    return resources.files(__package__).joinpath("units", name).read_text(encoding="utf-8")


def unit_text(name: str, wizd: Path) -> str:
    """The unit file ``name`` as installed for the executable ``wizd``."""
    text = shipped_unit(name)
    if name == "wizd.service":
        if SHIPPED_EXEC not in text:
            raise AssertionError(f"{name} has no {SHIPPED_EXEC} line to fill in")
        text = text.replace(SHIPPED_EXEC, "ExecStart=" + exec_path(wizd))
    return text


def user_manager() -> str | None:
    """None if ``systemctl --user`` reaches a user manager, else why not."""
    systemctl = shutil.which("systemctl")
    if systemctl is None:
        return "systemctl is not installed"
    try:
        done = subprocess.run([systemctl, "--user", "show-environment"], capture_output=True,
                              text=True, timeout=15, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"systemctl --user failed: {exc}"
    if done.returncode != 0:
        detail = done.stderr.strip().splitlines()
        return "no systemd user manager answers" + (f" ({detail[-1]})" if detail else "")
    return None


class UnitAction(TypedDict):
    path: str
    action: str  # wrote, updated, unchanged, removed


class SystemctlRun(TypedDict):
    args: list[str]
    ok: bool
    output: list[str]


class ReportDoc(TypedDict, total=False):
    """What ``--json`` prints: ``units`` and ``systemctl`` always; install adds the rest."""

    units: list[UnitAction]
    systemctl: list[SystemctlRun]
    exec_start: str
    reloaded: bool
    not_reloaded_because: str | None


class Report:
    """What install/uninstall did: said line by line to a person, or gathered
    into one JSON object for a script (``--json``)."""

    def __init__(self, json: bool) -> None:
        self.json = json
        self.doc: ReportDoc = {"units": [], "systemctl": []}

    def say(self, text: str) -> None:
        if not self.json:
            typer.echo(text)

    def finish(self) -> None:
        if self.json:
            typer.echo(dump_json(self.doc))


def systemctl(report: Report, *args: str) -> bool:
    """Run ``systemctl --user ARGS``, echoing it; True if it succeeded."""
    cmd = ["systemctl", "--user", *args]
    report.say("$ " + " ".join(cmd))
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    said = (done.stdout + done.stderr).strip().splitlines()
    for line in said:
        report.say("  " + line)
    report.doc["systemctl"].append({"args": list(args), "ok": done.returncode == 0,
                                    "output": said})
    return done.returncode == 0


def _write(path: Path, text: str) -> str:
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return "unchanged"
    existed = path.exists()
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.chmod(0o644)
    tmp.replace(path)
    return "updated" if existed else "wrote"


Wizd = Annotated[Path | None, typer.Option(
    "--wizd", help="The wizd executable to run (default: next to this Python, else on PATH).")]
Json = Annotated[bool, typer.Option("--json", help="Print what was done as one JSON object.")]


@app.command()
def install(wizd: Wizd = None, json: Json = False) -> None:
    """Write wizd.service and wizd.socket for the user's systemd and reload it."""
    exe = wizd.absolute() if wizd is not None else find_wizd()
    if exe is None or not (exe.is_file() and os.access(exe, os.X_OK)):
        raise WizClientError(f"cannot find an executable wizd ({exe or 'not on PATH'}); "
                             "pass --wizd PATH")
    report = Report(json)
    target = unit_dir()
    target.mkdir(parents=True, exist_ok=True)
    for name in UNITS:
        what = _write(target / name, unit_text(name, exe))
        report.say(f"{what} {target / name}")
        report.doc["units"].append({"path": str(target / name), "action": what})
    report.say(f"ExecStart={exec_path(exe)}")
    report.doc["exec_start"] = exec_path(exe)
    problem = user_manager()
    report.doc["reloaded"] = problem is None and systemctl(report, "daemon-reload")
    report.doc["not_reloaded_because"] = problem
    if problem is not None:
        report.say(f"not reloading systemd: {problem}. The units are in place; in a session "
                   "with a user manager run: systemctl --user daemon-reload")
    report.say(NEXT_STEPS)
    report.finish()


@app.command()
def uninstall(json: Json = False) -> None:
    """Stop and disable wizd's units, then remove them."""
    report = Report(json)
    target = unit_dir()
    present = [name for name in UNITS if (target / name).exists()]
    problem = user_manager()
    if problem is None:
        # Disabling a unit that is not loaded fails harmlessly; go on regardless.
        systemctl(report, "disable", "--now", *UNITS)
    else:
        report.say(f"not stopping anything through systemd: {problem}")
    for name in present:
        (target / name).unlink()
        report.say(f"removed {target / name}")
        report.doc["units"].append({"path": str(target / name), "action": "removed"})
    if not present:
        report.say(f"no wizd units in {target}")
    if problem is None and present:
        systemctl(report, "daemon-reload")
    report.finish()
