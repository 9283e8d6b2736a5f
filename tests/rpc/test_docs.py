"""docs/protocol.md lists exactly the registered methods (regenerate with
``python -m wizd.rpc.openrpc docs/protocol.md``)."""

from pathlib import Path

from wizd.rpc.methods import registry
from wizd.rpc.openrpc import BEGIN, END, methods_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


def test_protocol_doc_methods_table_is_current() -> None:
    text = DOC.read_text()
    generated = text.split(BEGIN, 1)[1].split(END, 1)[0]
    assert generated.strip() == methods_markdown(registry).strip()


def test_every_contract_method_is_registered() -> None:
    contract = Path(__file__).resolve().parents[3] / "shared" / "PROTOCOL.md"
    names = {"daemon.status", "rpc.discover", "user.me", "user.list", "provider.create",
             "provider.list", "provider.update", "provider.delete", "provider.set_default",
             "agent.create", "agent.list", "agent.get", "agent.update", "agent.activate",
             "agent.deactivate", "dm.create", "dm.list", "dm.get", "dm.add_participant",
             "dm.remove_participant", "dm.archive", "project.create", "project.list",
             "channel.create", "channel.list", "message.send", "message.list", "job.list",
             "job.get", "job.retry", "job.cancel", "queue.pause", "queue.resume",
             "events.subscribe", "events.unsubscribe"}
    if contract.exists():  # beside the repository in CI and in sessions
        for name in names:
            assert f"`{name}`" in contract.read_text()
    assert names <= set(registry.methods)
