from __future__ import annotations

import dataclasses
import inspect
from dataclasses import FrozenInstanceError, dataclass, field
from decimal import Decimal

import pytest

from turnus.engine.frozen import slot_init
from turnus.engine.invoice import (
    Allowance,
    ComposedInvoice,
    DiscountUsage,
    InvoiceLine,
    LineInput,
    Totals,
    VatBreakdown,
)
from turnus.engine.pricing import Rating, RatingComponent


def _tags() -> list[str]:
    return ["new"]


@slot_init
@dataclass(frozen=True, slots=True)
class Sample:
    name: str
    size: int = 3
    tags: list[str] = field(default_factory=_tags)


@dataclass(frozen=True, slots=True)
class Reference:
    name: str
    size: int = 3
    tags: list[str] = field(default_factory=_tags)


def test_the_init_fills_required_defaulted_and_factory_fields() -> None:
    assert Sample("a") == Sample("a", 3, ["new"])
    assert Sample("a", tags=["x"], size=5) == Sample(name="a", size=5, tags=["x"])
    assert Sample("a").tags is not Sample("a").tags


def test_instances_stay_frozen_and_hashable() -> None:
    sample = Sample("a", 1, [])
    with pytest.raises(FrozenInstanceError):
        sample.name = "b"  # type: ignore[misc]
    one, two = (
        RatingComponent("flat", Decimal(1), Decimal(2), Decimal(2)),
        RatingComponent("flat", Decimal(1), Decimal(2), Decimal(2)),
    )
    assert one is not two
    assert hash(one) == hash(two)
    assert {one, two} == {one}


def test_arguments_are_checked_like_the_dataclass_init() -> None:
    with pytest.raises(TypeError):
        Sample()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Sample("a", 1, [], 4)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Sample("a", colour="red")  # type: ignore[call-arg]


def test_the_signature_matches_the_dataclass_generated_one() -> None:
    assert str(inspect.signature(Sample)) == str(inspect.signature(Reference))
    assert Sample.__init__.__qualname__ == "Sample.__init__"


@pytest.mark.parametrize(
    "cls",
    [
        LineInput,
        InvoiceLine,
        Allowance,
        VatBreakdown,
        Totals,
        DiscountUsage,
        ComposedInvoice,
        RatingComponent,
        Rating,
    ],
)
def test_engine_classes_keep_their_fields_as_parameters(cls: type) -> None:
    parameters = list(inspect.signature(cls).parameters.values())
    names = [field.name for field in dataclasses.fields(cls)]
    assert [parameter.name for parameter in parameters] == names


def test_a_class_without_fields_gets_an_init() -> None:
    @slot_init
    @dataclass(frozen=True, slots=True)
    class Empty:
        pass

    assert Empty() == Empty()


class Plain:
    __slots__ = ()


@dataclass(slots=True)
class Mutable:
    name: str


@dataclass(frozen=True)
class Unslotted:
    name: str


@dataclass(frozen=True, slots=True)
class Checked:
    name: str

    def __post_init__(self) -> None:
        pass


@dataclass(frozen=True, slots=True)
class KeywordOnly:
    name: str = field(kw_only=True)


@dataclass(frozen=True, slots=True)
class Derived:
    name: str
    size: int = field(init=False, default=0)


class Undecorated(Reference):
    __slots__ = ()


@pytest.mark.parametrize("cls", [Plain, Mutable, Unslotted, Checked, KeywordOnly, Derived, Undecorated])
def test_classes_it_cannot_serve_are_refused(cls: type) -> None:
    with pytest.raises(TypeError):
        slot_init(cls)
