"""API keys held in files: read when a call is made, refused unless private.

The reader against real files (modes, owners, FIFOs, odd contents), then
``complete()`` with a key file against a real scripted OpenAI server.
"""

from __future__ import annotations

import os
import traceback
from pathlib import Path
from typing import Any

import pytest

from tests.support.openai_server import OpenAIServer, openai_server
from wizd.errors import ProviderAuthError
from wizd.llm import ChatMessage, ChatRequest, ProviderConfig, complete
from wizd.llm.keyfile import MAX_BYTES, KeyFileError, read_key_file

KEY = "sk-file-Qw71KEYINAFILEabcdefghijklmnop"
REQUEST = ChatRequest("gpt-test", (ChatMessage("user", "hello"),))


def key_file(tmp_path: Path, content: str | bytes = KEY + "\n", mode: int = 0o600) -> Path:
    path = tmp_path / "openai.key"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    path.chmod(mode)
    return path


def shown(exc: BaseException) -> str:
    """Everything a log line or a traceback of ``exc`` could show."""
    return "\n".join([str(exc), repr(exc), *traceback.format_exception(exc)])


# -- the reader ---------------------------------------------------------------


@pytest.mark.parametrize("content", [KEY, KEY + "\n", KEY + "\r\n", f"  {KEY} \n\n"])
def test_the_key_is_the_file_without_surrounding_blanks(tmp_path: Path, content: str) -> None:
    assert read_key_file(str(key_file(tmp_path, content))) == KEY


@pytest.mark.parametrize("mode", [0o400, 0o600, 0o700])
def test_private_modes_are_accepted(tmp_path: Path, mode: int) -> None:
    assert read_key_file(str(key_file(tmp_path, mode=mode))) == KEY


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o620, 0o602, 0o610, 0o660])
def test_a_file_others_may_read_or_write_is_refused(tmp_path: Path, mode: int) -> None:
    path = key_file(tmp_path, mode=mode)
    with pytest.raises(KeyFileError) as info:
        read_key_file(str(path))
    message = str(info.value)
    assert str(path) in message and f"{mode:04o}" in message
    assert f"chmod 600 {path}" in message
    assert KEY not in shown(info.value)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nope.key"
    with pytest.raises(KeyFileError) as info:
        read_key_file(str(path))
    assert str(info.value) == f"API key file {path} does not exist"


def test_a_relative_path_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key_file(tmp_path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(KeyFileError) as info:
        read_key_file("openai.key")
    assert "absolute" in str(info.value)


def test_a_directory_is_not_a_key_file(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    folder.mkdir(mode=0o700)
    with pytest.raises(KeyFileError) as info:
        read_key_file(str(folder))
    assert "not a regular file" in str(info.value)


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    # A blocking open of a FIFO would wait for a writer forever.
    fifo = tmp_path / "key.fifo"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(KeyFileError) as info:
        read_key_file(str(fifo))
    assert "not a regular file" in str(info.value)


def test_a_symlink_to_a_private_file_is_followed(tmp_path: Path) -> None:
    link = tmp_path / "current.key"
    link.symlink_to(key_file(tmp_path))
    assert read_key_file(str(link)) == KEY


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_file_owned_by_someone_else_is_refused(tmp_path: Path) -> None:
    path = key_file(tmp_path)
    os.chown(path, 65534, 65534)
    with pytest.raises(KeyFileError) as info:
        read_key_file(str(path))
    assert f"owned by uid 65534, not by wizd's user (uid {os.geteuid()})" in str(info.value)
    assert KEY not in shown(info.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_is_refused(tmp_path: Path) -> None:
    path = key_file(tmp_path, mode=0o000)
    with pytest.raises(KeyFileError) as info:
        read_key_file(str(path))
    assert "cannot be read" in str(info.value)


@pytest.mark.parametrize(("content", "problem"), [
    ("", "is empty"),
    (" \n\n", "is empty"),
    (f"{KEY}\nsecond line\n", "more than one line"),
    (f"OPENAI_API_KEY={KEY}\x00\n", "control characters"),
])
def test_contents_that_cannot_be_a_key_are_refused(
    tmp_path: Path, content: str, problem: str
) -> None:
    with pytest.raises(KeyFileError) as info:
        read_key_file(str(key_file(tmp_path, content)))
    assert problem in str(info.value)
    assert KEY not in shown(info.value) and "second line" not in shown(info.value)


def test_a_file_that_is_not_utf8_says_so_without_its_bytes(tmp_path: Path) -> None:
    content = KEY.encode() + b"\xff\xfe" + b"tail-SECRET"
    with pytest.raises(KeyFileError) as info:
        read_key_file(str(key_file(tmp_path, content)))
    assert "not UTF-8" in str(info.value)
    # Nothing chained: a UnicodeDecodeError would carry the whole content.
    assert info.value.__context__ is None and info.value.__cause__ is None
    assert KEY not in shown(info.value) and "tail-SECRET" not in shown(info.value)


def test_a_huge_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError) as info:
        read_key_file(str(key_file(tmp_path, "k" * (MAX_BYTES + 1))))
    assert f"larger than {MAX_BYTES} bytes" in str(info.value)


# -- complete() reads the file at call time -------------------------------------


def provider_for(srv: OpenAIServer, path: Path) -> ProviderConfig:
    return ProviderConfig("prov-1", "local", "openai", srv.base_url, "gpt-test",
                          api_key_file=str(path))


@pytest.mark.anyio
async def test_the_key_in_the_file_is_sent_and_reread_on_every_call(
    tmp_path: Path, deltas: Any
) -> None:
    path = key_file(tmp_path)
    async with openai_server() as srv:
        provider = provider_for(srv, path)
        await complete(provider, REQUEST, deltas)
        path.write_text("sk-file-ROTATED-2\n")  # a rotated key: no restart, no update
        await complete(provider, REQUEST, deltas)
        first, second = srv.requests
    assert first.headers["authorization"] == f"Bearer {KEY}"
    assert second.headers["authorization"] == "Bearer sk-file-ROTATED-2"
    assert KEY not in repr(provider)


@pytest.mark.anyio
async def test_a_bad_key_file_fails_the_call_for_good_without_a_request(
    tmp_path: Path, deltas: Any
) -> None:
    path = key_file(tmp_path, mode=0o644)
    async with openai_server() as srv:
        with pytest.raises(ProviderAuthError) as info:
            await complete(provider_for(srv, path), REQUEST, deltas)
        assert srv.requests == []
    exc = info.value
    assert not exc.retryable and exc.provider == "local"
    assert str(exc) == (f"provider local: API key file {path} is accessible by group or "
                        f"others (mode 0644); run chmod 600 {path}")
    assert exc.__suppress_context__ or exc.__context__ is None
    assert KEY not in shown(exc) and KEY not in repr(exc.data)
