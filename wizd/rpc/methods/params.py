"""RPC params taken from a service's pydantic model, so that an operation's
field list is written once (the model) and serves both the RPC method and
the service it calls.

The registry makes a method's params (validation and the JSON Schema of
``rpc.discover``) from its handler's signature; ``params_of`` gives a handler
the signature its model spells, after any params of its own (``id``), so
the registry sees the same names, types and defaults as if they were
written out.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import pydantic

F = TypeVar("F", bound=Callable[..., Any])


def params_of(model: type[pydantic.BaseModel], *, first: tuple[str, ...] = ()) -> Callable[[F], F]:
    """Give the handler the signature ``(call, *first, *model's fields)``.

    The handler is declared ``(call, <first...>, **fields)`` and gets each of
    the model's fields by name, already validated by the registry.
    """
    def decorate(func: F) -> F:
        sig = inspect.signature(func)
        own = list(sig.parameters.values())
        kept = own[:1 + len(first)]  # call and the params named in ``first``
        assert [p.name for p in kept[1:]] == list(first), "declare `first` params in order"
        annotations = {name: func.__annotations__[name] for name in ("call", *first)}
        for name, field in model.model_fields.items():
            default = inspect.Parameter.empty if field.is_required() else field.default
            kept.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY,
                                          default=default, annotation=field.annotation))
            annotations[name] = field.annotation
        annotations["return"] = func.__annotations__["return"]
        func.__signature__ = sig.replace(parameters=kept)  # type: ignore[attr-defined]
        func.__annotations__ = annotations
        return func

    return decorate
