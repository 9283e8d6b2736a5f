"""The method registry: one decorator turns a typed async function into an RPC
method, with params validated by pydantic from its signature.

    @registry.method("agent.get")
    async def agent_get(call: Call, id: str | None = None, name: str | None = None) -> Agent:
        "Get one agent by id or name."

Every parameter after ``call`` is a by-name JSON-RPC param; its annotation and
default make the validation and the JSON Schema that ``rpc.discover`` shows.
The return annotation (a shape of ``wizd.objects``) makes the result's schema.
Unknown params are refused (-32602), so a typo never passes silently.

Types are strict: a boolean is not a number, a float (even ``2.0``) is not an
integer, a string is not a number nor a number a string; an integer is a fine
float. Every integer must fit a SQLite column (signed 64 bits) and every float
must be finite, whatever the param, so no value reaches the store that it
cannot hold.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar, get_type_hints

import pydantic

from ..errors import InvalidInput

Handler = Callable[..., Awaitable[Any]]
T = TypeVar("T")


@dataclass(frozen=True)
class MethodSpec:
    name: str
    func: Handler
    params: type[pydantic.BaseModel]
    summary: str
    description: str
    # The function's return annotation, resolved (Any when it has none).
    result: Any

    def validate(self, params: dict[str, Any]) -> dict[str, Any]:
        """The params as the function wants them. Raises InvalidInput naming the field."""
        if not params and not self.params.model_fields:
            return {}  # nothing to check (daemon.status): pydantic costs ~10 us a call
        bad = _unstorable(params, "")
        if bad is not None:
            path, problem = bad
            raise InvalidInput(path or "params", problem)
        try:
            model = self.params.model_validate(params)
        except pydantic.ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "params"
            problem = first["msg"]
            if first["type"] == "extra_forbidden":
                problem = "unknown parameter"
            raise InvalidInput(field, problem) from None
        return {name: getattr(model, name) for name in self.params.model_fields}


INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def _unstorable(value: Any, path: str) -> tuple[str, str] | None:
    """(path, problem) of the first value in ``value`` that wizd cannot store, or None.

    JSON can spell a lone surrogate (``"\\ud800"``), which UTF-8, SQLite and every
    client's terminal cannot hold, and integers of any size, which a SQLite
    column cannot; a caller in Python can also pass NaN or an infinity.
    """
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return path, "is not valid Unicode (a lone surrogate)"
        return None
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            return path, f"must be between {INT64_MIN} and {INT64_MAX} (64 bits)"
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else (path, "must be a finite number")
    items: Any = value.items() if isinstance(value, dict) else (
        enumerate(value) if isinstance(value, list) else ())
    for key, item in items:
        found = _unstorable(item, f"{path}.{key}" if path else str(key))
        if found is not None:
            return found
    return None


def _params_model(name: str, func: Handler) -> type[pydantic.BaseModel]:
    sig = inspect.signature(func)
    hints = get_type_hints(func)
    fields: dict[str, Any] = {}
    for index, (pname, param) in enumerate(sig.parameters.items()):
        if index == 0:  # the Call context
            continue
        annotation = hints.get(pname, Any)
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[pname] = (annotation, default)
    model_name = "".join(part.capitalize() for part in name.replace("_", ".").split(".")) + "Params"
    return pydantic.create_model(
        model_name,
        __config__=pydantic.ConfigDict(extra="forbid", strict=True),
        **fields,
    )


class Registry:
    def __init__(self) -> None:
        self.methods: dict[str, MethodSpec] = {}
        # Values derived from the methods, kept until another method registers.
        self._derived: dict[Hashable, Any] = {}

    def derived(self, key: Hashable, build: Callable[[], T]) -> T:
        """``build()``, computed on first use and kept until another method is
        registered: e.g. the rpc.discover document (the methods do not change
        once the daemon runs)."""
        try:
            return self._derived[key]  # type: ignore[no-any-return]
        except KeyError:
            value = self._derived[key] = build()
            return value

    def method(self, name: str) -> Callable[[Handler], Handler]:
        def register(func: Handler) -> Handler:
            if name in self.methods:
                raise ValueError(f"RPC method {name} registered twice")
            self._derived.clear()
            doc = inspect.getdoc(func) or ""
            summary, _, description = doc.partition("\n\n")
            self.methods[name] = MethodSpec(
                name=name,
                func=func,
                params=_params_model(name, func),
                summary=summary.replace("\n", " ").strip(),
                description=description.strip(),
                result=get_type_hints(func, include_extras=True).get("return", Any),
            )
            return func

        return register


# The daemon's methods register here when wizd.rpc.methods is imported.
registry = Registry()
