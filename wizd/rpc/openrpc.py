"""The OpenRPC document served by ``rpc.discover``, generated from the registry.

Each method's params come from the JSON Schema that pydantic derives from the
handler's signature, so the document cannot drift from what is validated; its
result comes from the handler's return annotation (a shape of
``wizd.objects``), each shape once under ``components.schemas``, referred to
by ``$ref``; so do the params of the notifications a subscription receives
(``x-notification-params``). Result objects list every field wizd sends today
but do not forbid others: the protocol lets a later version add fields to results.
Generating it takes milliseconds of CPU, so ``rpc.discover`` sends a copy
built (and encoded) once per registry.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import TypeAdapter
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import CoreSchema
from typing_extensions import NotRequired, TypedDict  # noqa: UP035 (pydantic wants both from here on 3.11)

from .. import objects
from .dispatch import RawJSON
from .registry import MethodSpec, Registry

REF_TEMPLATE = "#/components/schemas/{model}"


class ContentDescriptor(TypedDict):
    name: str
    schema: dict[str, Any]


class ParamDescriptor(ContentDescriptor):
    required: bool


Method = TypedDict("Method", {
    "name": str,
    "summary": str,
    "description": NotRequired[str],
    "paramStructure": Literal["by-name"],
    "params": list[ParamDescriptor],
    "result": ContentDescriptor,
    "x-defs": NotRequired[dict[str, Any]],
})


class Info(TypedDict):
    title: str
    version: str


class Components(TypedDict):
    schemas: dict[str, dict[str, Any]]


OpenRpcDocument = TypedDict("OpenRpcDocument", {
    "openrpc": str,
    "info": Info,
    "methods": list[Method],
    "components": Components,
    "x-notifications": dict[str, str],
    "x-notification-params": dict[str, dict[str, Any]],
})
OpenRpcDocument.__doc__ = """The OpenRPC document of wizd's methods (https://spec.open-rpc.org)."""

# What rpc.discover returns: the document, encoded once.
Discovered = Annotated[RawJSON, OpenRpcDocument]

# Server-to-client notifications are not methods a client calls; they are
# listed under an extension key so that clients can discover them too.
NOTIFICATIONS: dict[str, str] = {
    "message.created": "params: subscription, message (with its seq)",
    "message.delta": "params: subscription, job_id, conversation_id, author_id, index, delta",
    "agent.status": "params: subscription, agent_id, status",
    "tool.started": "params: subscription, job_id, conversation_id, agent_id, call_id, name,"
                    " arguments, step",
    "tool.finished": "params: subscription, job_id, conversation_id, agent_id, call_id, name,"
                     " duration_ms, outcome, result (its first 200 characters)",
    "tool.approval_requested": "params: subscription, job_id, conversation_id, agent_id,"
                               " call_id, name, arguments",
    "job.updated": "params: subscription, job",
    "events.lagged": "params: subscription, last_seq; the subscription has ended",
}
# The shape of each notification's params, published like results.
NOTIFICATION_PARAMS: dict[str, Any] = {
    "message.created": objects.MessageCreated,
    "message.delta": objects.MessageDelta,
    "agent.status": objects.AgentStatusChanged,
    "tool.started": objects.ToolStarted,
    "tool.finished": objects.ToolFinished,
    "tool.approval_requested": objects.ToolApprovalRequested,
    "job.updated": objects.JobUpdated,
    "events.lagged": objects.EventsLagged,
}


def _param_docs(schema: dict[str, Any]) -> list[ParamDescriptor]:
    required = set(schema.get("required", []))
    params: list[ParamDescriptor] = []
    for name, prop in schema.get("properties", {}).items():
        prop = dict(prop)
        prop.pop("title", None)
        params.append({"name": name, "required": name in required, "schema": prop})
    return params


class _Schemas(GenerateJsonSchema):
    """Compact schemas: a property's name is its title already."""

    def field_title_should_be_set(self, schema: CoreSchema) -> bool:
        return False


def result_type(spec: MethodSpec) -> Any:
    """The type of ``spec``'s result as a client decodes it: its return annotation,
    or ``T`` for a pre-encoded result annotated ``Annotated[RawJSON, T]``.

    Raises TypeError for a bare RawJSON, whose shape nothing declares.
    """
    annotation = spec.result
    if get_origin(annotation) is Annotated:
        base, *meta = get_args(annotation)
        if base is RawJSON and meta:
            return meta[0]
    if annotation is RawJSON:
        raise TypeError(f"{spec.name}: annotate a RawJSON result as Annotated[RawJSON, T]")
    return annotation


def _schemas(
    registry: Registry,
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]], dict[str, Any]]:
    """Each method's result schema and each notification's params schema (a
    ``$ref`` for a named shape), and the shared definitions they refer to
    (``components.schemas``)."""
    inputs = [(("result", name), "serialization", TypeAdapter(result_type(spec)))
              for name, spec in registry.methods.items()]
    inputs += [(("notification", name), "serialization", TypeAdapter(shape))
               for name, shape in NOTIFICATION_PARAMS.items()]
    by_key, definitions = TypeAdapter.json_schemas(
        inputs, ref_template=REF_TEMPLATE, schema_generator=_Schemas)  # type: ignore[arg-type]
    found: dict[str, dict[str, dict[str, Any]]] = {"result": {}, "notification": {}}
    for ((kind, name), _), schema in by_key.items():
        found[kind][name] = schema
    return found["result"], found["notification"], definitions.get("$defs", {})


def document(registry: Registry, version: str) -> OpenRpcDocument:
    methods = []
    results, notifications, definitions = _schemas(registry)
    for name in sorted(registry.methods):
        spec = registry.methods[name]
        schema = spec.params.model_json_schema()
        entry: Method = {
            "name": name,
            "summary": spec.summary,
            "paramStructure": "by-name",
            "params": _param_docs(schema),
            "result": {"name": "result", "schema": results[name]},
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
        "components": {"schemas": definitions},
        "x-notifications": NOTIFICATIONS,
        "x-notification-params": notifications,
    }


def discover_result(registry: Registry, version: str) -> Discovered:
    """``document(registry, version)``, encoded: built on the first call and kept
    until another method is registered."""
    return registry.derived(("openrpc", version), lambda: RawJSON.of(document(registry, version)))


def _type_of(schema: dict[str, Any]) -> str:
    if "anyOf" in schema:
        return " | ".join(_type_of(s) for s in schema["anyOf"] if s.get("type") != "null")
    if schema.get("type") == "array":
        return f"{_type_of(schema.get('items', {}))}[]"
    return str(schema.get("type", "any"))


def _result_of(schema: dict[str, Any], shapes: dict[str, dict[str, Any]]) -> str:
    """A result's type for the table: its shape's name, or a small shape spelled out."""
    if "$ref" in schema:
        name: str = schema["$ref"].removeprefix(REF_TEMPLATE.format(model=""))
        props = shapes[name].get("properties", {})
        if not 0 < len(props) <= 2:
            return name
        return "{" + ", ".join(f"{key}: {_result_of(value, shapes)}"
                               for key, value in props.items()) + "}"
    if schema.get("type") == "array":
        return f"{_result_of(schema.get('items', {}), shapes)}[]"
    return _type_of(schema)


def methods_markdown(registry: Registry) -> str:
    """The methods table of docs/protocol.md, generated like ``rpc.discover``."""
    rows = ["| method | params | result | what it does |", "| --- | --- | --- | --- |"]
    doc = document(registry, "")
    shapes = doc["components"]["schemas"]
    for entry in doc["methods"]:
        params = ", ".join(
            f"`{p['name']}{'' if p['required'] else '?'}`: {_type_of(p['schema'])}"
            for p in entry["params"]
        ) or "—"
        result = _result_of(entry["result"]["schema"], shapes)
        rows.append(f"| `{entry['name']}` | {params} | {result} | {entry['summary']} |")
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
