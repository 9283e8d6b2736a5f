"""message.list pages (issue 10): before_seq walks back through a long history,
after_seq forwards, and has_more says whether another page lies that way."""

from __future__ import annotations

import pytest

from wizd.errors import InvalidInput
from wizd.objects import MessageList
from wizd.services import messages, projects
from wizd.services.runtime import Runtime

pytestmark = pytest.mark.anyio


async def test_pages_back_and_forth(rt: Runtime) -> None:
    await projects.create_project(rt, name="p")
    general = await projects.create_channel(rt, project_id="p", name="general")
    other = await projects.create_channel(rt, project_id="p", name="other")
    cid = general["id"]
    for i in range(7):
        await messages.send(rt, conversation_id=cid, content=f"m{i}")
        await messages.send(rt, conversation_id=other["id"], content=f"o{i}")

    def contents(page: MessageList) -> tuple[list[str], bool]:
        return [m["content"] for m in page["messages"]], page["has_more"]

    async def page(**kwargs: int) -> tuple[list[str], bool]:
        return contents(await messages.list_page(rt, conversation_id=cid, **kwargs))

    newest = await messages.list_page(rt, conversation_id=cid, limit=3)
    assert contents(newest) == (["m4", "m5", "m6"], True)
    before = newest["messages"][0]["seq"]
    assert await page(limit=3, before_seq=before) == (["m1", "m2", "m3"], True)
    assert await page(limit=3, before_seq=before - 6) == (["m0"], False)
    assert await page(limit=7) == ([f"m{i}" for i in range(7)], False)
    first = await messages.list_page(rt, conversation_id=cid, after_seq=0, limit=3)
    assert contents(first) == (["m0", "m1", "m2"], True)
    after = first["messages"][-1]["seq"]
    assert await page(after_seq=after, limit=4) == (["m3", "m4", "m5", "m6"], False)
    # Both: a window, in increasing seq.
    assert await page(after_seq=after, before_seq=before + 2, limit=1) == (["m3"], True)
    assert await page(after_seq=after, before_seq=before + 2, limit=2) == (["m3", "m4"], False)
    with pytest.raises(InvalidInput) as info:
        await messages.list_page(rt, conversation_id=cid, before_seq=-1)
    assert info.value.field == "before_seq"
