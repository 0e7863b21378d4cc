"""``@record`` and ``@record(frozen=True)``: dataclasses whose methods are not compiled at import.

The router's value types (the routes configuration, a request's attempts, a decision, an answer)
are declared exactly as dataclasses and behave as they do: the same ``__init__`` (positional or
keyword arguments, defaults, ``field(default_factory=...)``, ``__post_init__``), ``__repr__``,
``__eq__`` and ``__hash__`` (by the dataclass rules for ``eq=True`` and ``frozen``), the same
``FrozenInstanceError`` on assignment to a frozen one, and real ``dataclasses.Field`` objects in
``__dataclass_fields__``, so ``dataclasses.fields``, ``replace``, ``asdict`` and ``is_dataclass``
work on them unchanged.

Why not ``@dataclasses.dataclass`` itself: it writes each class's methods as source text and
compiles them with ``exec`` when the module is imported, about 1 ms per frozen class on Python
3.11 and 3.12 (measured here), and a ``.pyc`` file cannot keep the result. The function defines
some 35 of them before its first answer: 30–40 ms of every cold start, more than the router's
whole allowance against the original AWS sample (5% of that sample's cold start). Here the
methods are closures over the class's field list, made in microseconds; an instance is built by
a short loop instead of straight-line code (about a microsecond more), which no request notices.

Not supported, because no router type uses them: ``order``, ``unsafe_hash``, ``slots``,
``kw_only``, ``InitVar`` and ``__dataclass_params__``. ``ClassVar`` annotations are skipped as by
dataclasses.
"""

from __future__ import annotations

import dataclasses
import reprlib
from collections.abc import Callable
from typing import Any, TypeVar, overload

C = TypeVar("C", bound=type)
_MISSING: Any = dataclasses.MISSING
_FIELD: Any = dataclasses._FIELD  # type: ignore[attr-defined]  # what fields()/asdict() look for


@overload
def record(cls: C, /) -> C: ...


@overload
def record(cls: None = None, /, *, frozen: bool = False) -> Callable[[C], C]: ...


def record(cls: Any = None, /, *, frozen: bool = False) -> Any:
    """Make ``cls`` a dataclass (``eq=True``; ``frozen`` as given) without generated code."""

    def wrap(target: C) -> C:
        return _process(target, frozen)

    return wrap if cls is None else wrap(cls)


def _is_classvar(annotation: Any) -> bool:
    text = annotation if isinstance(annotation, str) else repr(annotation)
    return text.startswith(("ClassVar", "typing.ClassVar", "t.ClassVar"))


def _fields(cls: type) -> dict[str, dataclasses.Field[Any]]:
    fields: dict[str, dataclasses.Field[Any]] = {}
    for base in reversed(cls.__mro__[1:]):
        fields.update(base.__dict__.get("__dataclass_fields__", {}))
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():
        if _is_classvar(annotation):
            continue
        default = cls.__dict__.get(name, _MISSING)
        if isinstance(default, dataclasses.Field):
            spec = default
            if spec.default is _MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, spec.default)
        else:
            spec = dataclasses.field(default=default)
        if spec.default is not _MISSING and spec.default.__class__.__hash__ is None:
            raise ValueError(
                f"mutable default {type(spec.default)} for field {name} is not allowed: "
                "use default_factory"
            )
        spec.name = name
        spec.type = annotation
        spec._field_type = _FIELD  # type: ignore[attr-defined]
        if getattr(spec, "kw_only", False) is _MISSING:
            spec.kw_only = False  # type: ignore[attr-defined]
        fields[name] = spec
    return fields


def _process(cls: C, frozen: bool) -> C:
    fields = _fields(cls)
    init_fields = [f for f in fields.values() if f.init]
    seen_default = False
    for spec in init_fields:
        has_default = spec.default is not _MISSING or spec.default_factory is not _MISSING
        if seen_default and not has_default:
            raise TypeError(f"non-default argument {spec.name!r} follows default argument")
        seen_default = seen_default or has_default
    # Decided before any method is added, as dataclasses does: an __eq__ in the class body
    # leaves __hash__ None in its namespace, which is not an explicit hash.
    class_hash = cls.__dict__.get("__hash__", _MISSING)
    implicit_none = class_hash is None and "__eq__" in cls.__dict__
    explicit_hash = not (class_hash is _MISSING or implicit_none)

    cls.__dataclass_fields__ = fields  # type: ignore[attr-defined]
    qualname = cls.__qualname__
    methods: dict[str, Any] = {
        "__init__": _make_init(cls, init_fields, frozen),
        "__repr__": _make_repr(tuple(f.name for f in fields.values() if f.repr)),
        "__eq__": _make_eq(tuple(f.name for f in fields.values() if f.compare)),
    }
    for name, method in methods.items():
        if name not in cls.__dict__:
            method.__qualname__ = f"{qualname}.{name}"
            setattr(cls, name, method)
    if not explicit_hash:
        hashed = tuple(
            f.name for f in fields.values() if (f.compare if f.hash is None else f.hash)
        )
        cls.__hash__ = _make_hash(hashed) if frozen else None  # type: ignore[assignment]
    if frozen:
        for name in ("__setattr__", "__delattr__"):
            if name in cls.__dict__:
                raise TypeError(f"Cannot overwrite attribute {name} in class {cls.__name__}")
        cls.__setattr__, cls.__delattr__ = _make_frozen(cls, frozenset(fields))  # type: ignore[method-assign,assignment]
    cls.__match_args__ = tuple(f.name for f in init_fields)  # type: ignore[attr-defined]
    return cls


def _make_init(cls: type, init_fields: list[dataclasses.Field[Any]], frozen: bool) -> Any:
    names = tuple(f.name for f in init_fields)
    count = len(names)
    known = frozenset(names)
    defaults = {f.name: f.default for f in init_fields if f.default is not _MISSING}
    factories = {
        f.name: f.default_factory for f in init_fields if f.default_factory is not _MISSING
    }
    extra = [
        (f.name, f.default, f.default_factory)
        for f in cls.__dict__["__dataclass_fields__"].values()
        if not f.init and (f.default is not _MISSING or f.default_factory is not _MISSING)
    ]
    post_init = hasattr(cls, "__post_init__")
    # Instances get their fields straight into __dict__ (one C call), which is what assigning
    # each field amounts to unless the class intercepts assignment: then setattr, as dataclasses
    # does (a frozen record's own __setattr__ refuses, so it is bypassed like dataclasses does).
    intercepts = any(
        "__setattr__" in base.__dict__ or any(
            hasattr(base.__dict__.get(name), "__set__") for name in names
        )
        for base in cls.__mro__[:-1]  # all but object
    )
    assign = object.__setattr__ if frozen else setattr

    def bind(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        if len(args) > count:
            raise TypeError(
                f"__init__() takes {count + 1} positional arguments "
                f"but {len(args) + 1} were given"
            )
        values = dict(zip(names, args, strict=False))
        if kwargs:
            if not known.issuperset(kwargs):
                unknown = next(k for k in kwargs if k not in known)
                raise TypeError(f"__init__() got an unexpected keyword argument {unknown!r}")
            if not values.keys().isdisjoint(kwargs):
                twice = next(k for k in kwargs if k in values)
                raise TypeError(f"__init__() got multiple values for argument {twice!r}")
            values.update(kwargs)
        if len(values) < count:
            for name in names:
                if name in values:
                    continue
                if name in defaults:
                    values[name] = defaults[name]
                elif name in factories:
                    values[name] = factories[name]()
                else:
                    raise TypeError(
                        f"__init__() missing 1 required positional argument: {name!r}"
                    )
        for name, default, factory in extra:
            values[name] = factory() if default is _MISSING else default
        return values

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if not kwargs and len(args) == count and not extra:
            values = dict(zip(names, args, strict=True))
        elif not args and len(kwargs) == count and not extra and known.issuperset(kwargs):
            values = kwargs  # every field by name: the call's own dict
        else:
            values = bind(args, kwargs)
        if intercepts:
            for name, value in values.items():
                assign(self, name, value)
        else:
            self.__dict__.update(values)
        if post_init:
            self.__post_init__()

    return __init__


def _make_repr(names: tuple[str, ...]) -> Any:
    @reprlib.recursive_repr()
    def __repr__(self: Any) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
        return f"{self.__class__.__qualname__}({shown})"

    return __repr__


def _make_eq(names: tuple[str, ...]) -> Any:
    def __eq__(self: Any, other: Any) -> Any:
        if other.__class__ is self.__class__:
            return tuple(getattr(self, n) for n in names) == tuple(
                getattr(other, n) for n in names
            )
        return NotImplemented

    return __eq__


def _make_hash(names: tuple[str, ...]) -> Any:
    def __hash__(self: Any) -> int:
        return hash(tuple(getattr(self, n) for n in names))

    return __hash__


def _make_frozen(cls: type, names: frozenset[str]) -> tuple[Any, Any]:
    def __setattr__(self: Any, name: str, value: Any) -> None:
        if type(self) is cls or name in names:
            raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)

    def __delattr__(self: Any, name: str) -> None:
        if type(self) is cls or name in names:
            raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)

    __setattr__.__qualname__ = f"{cls.__qualname__}.__setattr__"
    __delattr__.__qualname__ = f"{cls.__qualname__}.__delattr__"
    return __setattr__, __delattr__
