"""A cheaper ``__init__`` for the engine's frozen, slotted value classes built on the rating hot path."""

from __future__ import annotations

from dataclasses import MISSING, fields, is_dataclass
from typing import Any, TypeVar

T = TypeVar("T")


class _NoValue:
    """Stands for an argument left out whose field has a default factory."""

    def __repr__(self) -> str:
        return "<factory>"


_NO_VALUE = _NoValue()


def slot_init(cls: type[T]) -> type[T]:
    """Give the frozen, slotted dataclass ``cls`` an ``__init__`` that fills each slot via its descriptor.

    Why: dataclass's frozen ``__init__`` goes through ``object.__setattr__`` for every field, which
    costs about twice a slot's own setter, and a rated period builds some twenty of these objects.
    The new ``__init__`` has the same parameters, defaults and default factories; instances stay
    frozen. Apply it above ``@dataclass(frozen=True, slots=True)``; classes with ``__post_init__`` or
    keyword-only fields are refused, as the generated code would not honour them.
    """
    params = vars(cls).get("__dataclass_params__")  # the class's own: a subclass may not be a dataclass
    if not is_dataclass(cls) or params is None or not params.frozen or "__slots__" not in vars(cls):
        raise TypeError(f"{cls.__name__} is not a frozen, slotted dataclass")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} has a __post_init__, which slot_init would not call")
    namespace: dict[str, Any] = {"_NO_VALUE": _NO_VALUE}
    parameters = ["self"]
    assignments = []
    for field in fields(cls):
        name = field.name
        if not field.init or field.kw_only:
            raise TypeError(f"{cls.__name__}.{name}: slot_init supports positional init fields only")
        namespace[f"_set_{name}"] = vars(cls)[name].__set__
        value = name
        if field.default is not MISSING:
            namespace[f"_default_{name}"] = field.default
            parameters.append(f"{name}=_default_{name}")
        elif field.default_factory is not MISSING:
            namespace[f"_factory_{name}"] = field.default_factory
            parameters.append(f"{name}=_NO_VALUE")
            value = f"_factory_{name}() if {name} is _NO_VALUE else {name}"
        else:
            parameters.append(name)
        assignments.append(f"    _set_{name}(self, {value})")
    body = "\n".join(assignments or ["    pass"])
    source = f"def __init__({', '.join(parameters)}) -> None:\n{body}\n"
    # Generated from the field names, as dataclasses itself generates __init__; nothing else goes in.
    exec(source, namespace)  # noqa: S102
    init = namespace["__init__"]
    original = vars(cls)["__init__"]
    init.__qualname__ = original.__qualname__
    init.__module__ = original.__module__
    init.__annotations__ = original.__annotations__
    init.__doc__ = original.__doc__
    type.__setattr__(cls, "__init__", init)
    return cls
