"""LISTEN_FDS parsing (the socket itself is exercised end to end in test_daemon.py)."""

from __future__ import annotations

import os

from wizd.systemd import take_listen_fds


def test_fds_for_this_pid_are_taken_with_their_names_and_the_variables_unset() -> None:
    env = {"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "2", "LISTEN_FDNAMES": "wizd.socket:x",
           "HOME": "/h"}
    assert take_listen_fds(env) == [(3, "wizd.socket"), (4, "x")]
    assert env == {"HOME": "/h"}  # a child process must not take them for its own


def test_fds_meant_for_another_process_are_ignored_but_still_unset() -> None:
    env = {"LISTEN_PID": "1", "LISTEN_FDS": "1"}
    assert take_listen_fds(env) == []
    assert env == {}


def test_no_activation() -> None:
    assert take_listen_fds({}) == []
    assert take_listen_fds({"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "1"}) == [(3, "unknown")]
