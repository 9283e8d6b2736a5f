"""``wizctl provider``: key files are sent as absolute paths, and only paths are shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.wizctl.fakewizd import FakeWizd
from wizctl.main import main

Capsys = pytest.CaptureFixture[str]
PROVIDER = {"id": "p-123456789", "name": "local", "type": "openai", "base_url": "http://x/v1",
            "default_model": "m", "is_default": False, "has_api_key": False,
            "api_key_env": None, "api_key_file": None}


@pytest.fixture
def wiz(fake: FakeWizd, monkeypatch: pytest.MonkeyPatch) -> FakeWizd:
    monkeypatch.setenv("WIZ_SOCKET", str(fake.path))
    fake.on("provider.list", {"providers": [PROVIDER]})
    fake.on("provider.create", fn=lambda p, peer: {**PROVIDER, **p})
    fake.on("provider.update", fn=lambda p, peer: {**PROVIDER, **p})
    return fake


def run(capsys: Capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_add_sends_the_key_file_as_an_absolute_path(
    wiz: FakeWizd, capsys: Capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert run(capsys, "provider", "add", "a", "--model", "m",
               "--api-key-file", "~/.config/wiz/openai.key")[0] == 0
    assert run(capsys, "provider", "add", "b", "--model", "m",
               "--api-key-file", "keys/../openai.key")[0] == 0
    sent = [c["api_key_file"] for c in wiz.calls("provider.create")]
    # ~ is this user's home, expanded here: the daemon never guesses whose it is.
    assert sent == [str(tmp_path / "home" / ".config" / "wiz" / "openai.key"),
                    str(tmp_path / "openai.key")]


def test_update_sets_or_removes_the_key_file(
    wiz: FakeWizd, capsys: Capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run(capsys, "provider", "update", "local", "--api-key-file", "openai.key")[0] == 0
    assert run(capsys, "provider", "update", "local", "--api-key-file", "")[0] == 0
    assert [c["api_key_file"] for c in wiz.calls("provider.update")] == [
        str(tmp_path / "openai.key"), ""]


def test_list_shows_where_the_key_comes_from(wiz: FakeWizd, capsys: Capsys) -> None:
    wiz.on("provider.list", {"providers": [
        {**PROVIDER, "name": "f", "api_key_file": "/home/u/openai.key"},
        {**PROVIDER, "name": "e", "api_key_env": "OPENAI_API_KEY"},
        {**PROVIDER, "name": "s", "has_api_key": True},
    ]})
    code, out, _ = run(capsys, "provider", "list")
    assert code == 0
    keys = [line.split()[4] for line in out.splitlines()[1:]]
    assert keys == ["/home/u/openai.key", "$OPENAI_API_KEY", "stored"]


def test_add_help_recommends_keys_outside_the_database(capsys: Capsys) -> None:
    assert main(["provider", "add", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--api-key-file" in text and "chmod 600" in text
    assert "copy of the database" in text

