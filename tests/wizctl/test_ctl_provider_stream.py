"""``wizctl provider add/update --no-stream``: sent as ``stream: false``."""

from __future__ import annotations

import pytest

from tests.wizctl.fakewizd import FakeWizd
from tests.wizctl.test_ctl_providers import PROVIDER, run

Capsys = pytest.CaptureFixture[str]


@pytest.fixture
def wiz(fake: FakeWizd, monkeypatch: pytest.MonkeyPatch) -> FakeWizd:
    monkeypatch.setenv("WIZ_SOCKET", str(fake.path))
    fake.on("provider.list", {"providers": [PROVIDER]})
    fake.on("provider.create", fn=lambda p, peer: {**PROVIDER, "stream": True, **p})
    fake.on("provider.update", fn=lambda p, peer: {**PROVIDER, "stream": True, **p})
    return fake


def test_add_no_stream(wiz: FakeWizd, capsys: Capsys) -> None:
    assert run(capsys, "provider", "add", "a", "--model", "m")[0] == 0
    assert run(capsys, "provider", "add", "b", "--model", "m", "--no-stream")[0] == 0
    sent = wiz.calls("provider.create")
    assert "stream" not in sent[0]  # the daemon's default: stream
    assert sent[1]["stream"] is False


def test_update_stream_or_no_stream_or_leave_it(wiz: FakeWizd, capsys: Capsys) -> None:
    for flag in ("--no-stream", "--stream"):
        assert run(capsys, "provider", "update", "local", flag)[0] == 0
    assert run(capsys, "provider", "update", "local", "--model", "n")[0] == 0
    sent = wiz.calls("provider.update")
    assert [c.get("stream") for c in sent] == [False, True, None]


def test_list_marks_a_provider_that_does_not_stream(wiz: FakeWizd, capsys: Capsys) -> None:
    wiz.on("provider.list", {"providers": [{**PROVIDER, "stream": False}]})
    code, out, _ = run(capsys, "provider", "list")
    assert code == 0 and "no stream" in out
