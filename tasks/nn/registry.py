"""The model classes and callables a checkpoint may name: nothing else is ever built from data."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from strata_errors import InputError

__all__ = ["register_model", "register_callable", "model_class", "model_name", "callable_named",
           "callable_name", "MODELS", "CALLABLES"]

T = TypeVar("T")

MODELS: dict[str, type] = {}
CALLABLES: dict[str, Callable[..., Any]] = {}


def _same(a: Any, b: Any) -> bool:
    """The same object, or its redefinition by a reloaded module (same module and qualified name)."""
    return a is b or (getattr(a, "__module__", None), getattr(a, "__qualname__", None)) == (
        getattr(b, "__module__", None), getattr(b, "__qualname__", None))


def _put(table: dict[str, Any], what: str, name: str, obj: Any) -> None:
    if not isinstance(name, str) or not name:
        raise ValueError(f"a registered {what} needs a non-empty name, got {name!r}")
    if name in table and not _same(table[name], obj):
        raise ValueError(f"{what} name {name!r} is already registered to {table[name]!r}")
    table[name] = obj


def register_model(name: str) -> Callable[[type[T]], type[T]]:
    """Decorator: ``@register_model("mlp")`` allows checkpoints of this ``torch.nn.Module`` class."""

    def deco(cls: type[T]) -> type[T]:
        _put(MODELS, "model class", name, cls)
        return cls

    return deco


def register_callable(name: str, fn: Callable[..., Any] | None = None) -> Any:
    """Allow ``fn`` (e.g. an activation) as an init argument of a checkpoint, stored as ``name``;
    a decorator when ``fn`` is omitted."""
    if fn is None:
        return lambda f: register_callable(name, f)
    _put(CALLABLES, "callable", name, fn)
    return fn


def _known(table: dict[str, Any]) -> str:
    return ", ".join(sorted(table)) or "none"


def model_class(name: str) -> type:
    """The class registered as ``name``; InputError for any other name."""
    if not isinstance(name, str) or name not in MODELS:
        raise InputError(f"model class {name!r} is not registered (registered: {_known(MODELS)}); "
                         "checkpoints build only classes declared with @register_model in imported code")
    return MODELS[name]


def model_name(cls: type) -> str:
    """The registered name of a model class; InputError when it has none."""
    for name, known in MODELS.items():
        if known is cls:
            return name
    raise InputError(f"model class {cls.__module__}.{cls.__qualname__} is not registered: "
                     "declare it with @register_model(\"name\") to store it as a checkpoint")


def callable_named(name: str) -> Callable[..., Any]:
    """The callable registered as ``name``; InputError for any other name."""
    if not isinstance(name, str) or name not in CALLABLES:
        raise InputError(f"callable {name!r} is not registered (registered: {_known(CALLABLES)})")
    return CALLABLES[name]


def callable_name(fn: Callable[..., Any]) -> str:
    """The registered name of a callable; InputError when it has none."""
    for name, known in CALLABLES.items():
        if known is fn:
            return name
    raise InputError(f"callable {getattr(fn, '__qualname__', fn)!r} is not registered: "
                     "declare it with register_callable(name, fn) to store it in a checkpoint")
