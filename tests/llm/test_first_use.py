"""Provider implementations are imported on first use, once, even when many
replies start at the same moment (a fresh process, so nothing is imported yet)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys, anyio
from wizd.llm.base import ChatMessage, ChatRequest, ProviderConfig
from wizd.llm import providers

assert "wizd.llm.offline" not in sys.modules and "openai" not in sys.modules

async def main():
    provider = ProviderConfig("p", "demo", "offline", None, "offline-demo")
    request = ChatRequest("offline-demo", (ChatMessage("user", "hello"),))
    results = []

    async def one():
        async def sink(piece): pass
        results.append((await providers.complete(provider, request, sink)).content)

    async with anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(one)
    assert len(results) == 50 and len(set(results)) == 1, results[:3]
    print("ok", "openai" in sys.modules)

anyio.run(main, backend=sys.argv[1])
"""


def test_concurrent_first_calls_all_get_the_finished_module() -> None:
    for backend in ("trio", "asyncio"):
        out = subprocess.run([sys.executable, "-c", SCRIPT, backend], capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        # The offline provider never pulls in the openai SDK.
        assert out.stdout.split() == ["ok", "False"]
