"""The OpenRPC document served by ``rpc.discover``, generated from the registry.

Each method's params come from the JSON Schema that pydantic derives from the
handler's signature, so the document cannot drift from what is validated.
Generating it takes milliseconds of CPU, so ``rpc.discover`` sends a copy
built (and encoded) once per registry.
"""

from __future__ import annotations

from typing import Any

from .dispatch import RawJSON
from .registry import Registry

# Server-to-client notifications are not methods a client calls; they are
# listed under an extension key so that clients can discover them too.
NOTIFICATIONS: dict[str, str] = {
    "message.created": "params: subscription, message (with its seq)",
    "message.delta": "params: subscription, job_id, conversation_id, author_id, index, delta",
    "agent.status": "params: subscription, agent_id, status",
    "job.updated": "params: subscription, job",
    "events.lagged": "params: subscription, last_seq; the subscription has ended",
}


def _param_docs(schema: dict[str, Any]) -> list[dict[str, Any]]:
    required = set(schema.get("required", []))
    params = []
    for name, prop in schema.get("properties", {}).items():
        prop = dict(prop)
        prop.pop("title", None)
        params.append({"name": name, "required": name in required, "schema": prop})
    return params


def document(registry: Registry, version: str) -> dict[str, Any]:
    methods = []
    for name in sorted(registry.methods):
        spec = registry.methods[name]
        schema = spec.params.model_json_schema()
        entry: dict[str, Any] = {
            "name": name,
            "summary": spec.summary,
            "paramStructure": "by-name",
            "params": _param_docs(schema),
            "result": {"name": "result", "schema": {"type": "object"}},
        }
        if spec.description:
            entry["description"] = spec.description
        if "$defs" in schema:
            entry["x-defs"] = schema["$defs"]
        methods.append(entry)
    return {
        "openrpc": "1.3.2",
        "info": {"title": "wizd", "version": version},
        "methods": methods,
        "x-notifications": NOTIFICATIONS,
    }


def discover_result(registry: Registry, version: str) -> RawJSON:
    """``document(registry, version)``, encoded: built on the first call and kept
    until another method is registered."""
    return registry.derived(("openrpc", version), lambda: RawJSON.of(document(registry, version)))


def _type_of(schema: dict[str, Any]) -> str:
    if "anyOf" in schema:
        return " | ".join(_type_of(s) for s in schema["anyOf"] if s.get("type") != "null")
    if schema.get("type") == "array":
        return f"{_type_of(schema.get('items', {}))}[]"
    return str(schema.get("type", "any"))


def methods_markdown(registry: Registry) -> str:
    """The methods table of docs/protocol.md, generated like ``rpc.discover``."""
    rows = ["| method | params | what it does |", "| --- | --- | --- |"]
    for entry in document(registry, "")["methods"]:
        params = ", ".join(
            f"`{p['name']}{'' if p['required'] else '?'}`: {_type_of(p['schema'])}"
            for p in entry["params"]
        ) or "—"
        rows.append(f"| `{entry['name']}` | {params} | {entry['summary']} |")
    return "\n".join(rows) + "\n"


BEGIN = "<!-- methods:begin (generated: python -m wizd.rpc.openrpc docs/protocol.md) -->"
END = "<!-- methods:end -->"


def _update_doc(path: str) -> None:
    from pathlib import Path

    from .methods import registry as live

    doc = Path(path)
    text = doc.read_text()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    doc.write_text(f"{head}{BEGIN}\n{methods_markdown(live)}{END}{tail}")


if __name__ == "__main__":
    import sys

    _update_doc(sys.argv[1])
