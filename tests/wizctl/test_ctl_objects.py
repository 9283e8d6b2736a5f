"""wizctl's typed shapes (``wizctl.objects``) are the daemon's (``wizd.objects``):
wizctl may not import wizd, so it keeps a copy, and this holds the copy true."""

from __future__ import annotations

import typing

import pytest

import wizctl.objects
import wizd.objects

SHAPES = [name for name, value in vars(wizctl.objects).items()
          if isinstance(value, type) and typing.is_typeddict(value)]


def test_there_are_shapes_to_check() -> None:
    assert {"Agent", "Message", "Job", "DaemonStatus", "MessageDelta"} <= set(SHAPES)


@pytest.mark.parametrize("name", SHAPES)
def test_a_shape_has_the_daemons_keys(name: str) -> None:
    ours, theirs = getattr(wizctl.objects, name), getattr(wizd.objects, name)
    assert ours.__required_keys__ == theirs.__required_keys__
    assert ours.__optional_keys__ == theirs.__optional_keys__
