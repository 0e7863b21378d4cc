"""``@record`` behaves as ``@dataclass`` for what the router's types use: each check runs on a
record and on the same class made by dataclasses, and expects the same outcome."""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Callable
from typing import Any, ClassVar

import pytest
from llm_router.config import load_routes
from llm_router.records import record

pytestmark = pytest.mark.generic  # holds for any valid routes file

Decorator = Callable[..., Any]
BOTH = pytest.mark.parametrize(
    "make", [dataclasses.dataclass, record], ids=["dataclass", "record"]
)


def kinds(make: Decorator) -> tuple[type, type, type]:
    @make(frozen=True)
    class Point:
        """A frozen value with a default, a factory and a field left out of eq and repr."""

        x: int
        y: int = 0
        tags: tuple[str, ...] = dataclasses.field(default_factory=tuple)
        note: str = dataclasses.field(default="", compare=False, repr=False)
        unit: ClassVar[str] = "m"

        @property
        def norm(self) -> int:
            return abs(self.x) + abs(self.y)

    @make
    class Counter:
        name: str
        seen: list[int] = dataclasses.field(default_factory=list)

        def __post_init__(self) -> None:
            self.seen.append(0)

    @make
    class Failure(Exception):
        code: str
        status: int = 500

        def __str__(self) -> str:
            return f"{self.code} ({self.status})"

    return Point, Counter, Failure


@BOTH
def test_init_defaults_and_factories(make: Decorator) -> None:
    point, counter, _ = kinds(make)
    p = point(1, tags=("a",))
    assert (p.x, p.y, p.tags, p.note, p.norm) == (1, 0, ("a",), "", 1)
    assert point(x=2, y=3).y == 3
    a, b = counter("a"), counter("b")
    assert a.seen == [0] and b.seen == [0] and a.seen is not b.seen  # __post_init__, factory
    assert point.unit == "m" and "unit" not in {f.name for f in dataclasses.fields(point)}


@BOTH
@pytest.mark.parametrize(
    "args,kwargs",
    [((), {}), ((1, 2, (), "", 5), {}), ((1,), {"x": 2}), ((1,), {"z": 1})],
    ids=["missing", "too many", "twice", "unknown"],
)
def test_bad_arguments_are_type_errors(
    make: Decorator, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    point, _, _ = kinds(make)
    with pytest.raises(TypeError):
        point(*args, **kwargs)


@BOTH
def test_repr_eq_and_hash(make: Decorator) -> None:
    point, counter, failure = kinds(make)
    assert repr(point(1, 2)) == "kinds.<locals>.Point(x=1, y=2, tags=())"
    assert point(1, 2, note="a") == point(1, 2, note="b")  # note is not compared
    assert point(1, 2) != point(2, 1) and point(1) != (1, 0, ())
    assert hash(point(1, 2, note="a")) == hash(point(1, 2, note="b"))
    assert counter("a") == counter("a")
    with pytest.raises(TypeError):
        hash(counter("a"))  # eq without frozen: unhashable, as dataclasses makes it
    with pytest.raises(TypeError):
        hash(failure("x"))


@BOTH
def test_frozen_refuses_assignment(make: Decorator) -> None:
    point, counter, _ = kinds(make)
    p = point(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.x = 2  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del p.y  # type: ignore[misc]
    c = counter("a")
    c.name = "b"
    assert c.name == "b"


@BOTH
def test_the_dataclasses_functions_work(make: Decorator) -> None:
    point, _, _ = kinds(make)
    p = point(1, 2, note="n")
    assert dataclasses.is_dataclass(p) and dataclasses.is_dataclass(point)
    assert [f.name for f in dataclasses.fields(p)] == ["x", "y", "tags", "note"]
    assert dataclasses.replace(p, y=5) == point(1, 5) and dataclasses.replace(p, y=5).note == "n"
    assert dataclasses.asdict(p) == {"x": 1, "y": 2, "tags": (), "note": "n"}
    assert dataclasses.astuple(p) == (1, 2, (), "n")


@BOTH
def test_an_exception_record_raises_and_keeps_its_str(make: Decorator) -> None:
    _, _, failure = kinds(make)
    with pytest.raises(failure) as caught:
        raise failure("Throttling", 429)
    assert str(caught.value) == "Throttling (429)" and caught.value.status == 429
    assert failure("a") == failure("a")


@BOTH
def test_declaration_errors(make: Decorator) -> None:
    with pytest.raises(ValueError, match="mutable default"):

        @make
        class Mutable:
            items: list[int] = []  # noqa: RUF012

    with pytest.raises(TypeError, match="non-default argument"):

        @make
        class Order:
            a: int = 0
            b: int


def test_the_routes_configuration_is_a_record_and_compares_by_value() -> None:
    first, second = load_routes(), load_routes()
    assert first == second and first is not second
    assert dataclasses.replace(first, semantic_k=first.semantic_k + 1) != first
    assert hash(first.classifier) == hash(second.classifier)
    assert "RoutesConfig(preset=" in repr(first)


def test_a_module_level_record_pickles() -> None:
    config = load_routes()
    assert pickle.loads(pickle.dumps(config.api)) == config.api
