"""Price models: pure arithmetic that turns a quantity into an exact, described amount.

One small class per model, registered in ``PRICE_MODELS`` by its ``model`` code. ``rate`` returns the
exact, unrounded amount and the components an invoice line needs to describe it.

Rules every model shares:

- ``included_units`` are free: ``billable_quantity = max(0, quantity - included_units)``, and the
  tiers, bands and packages apply to the billable quantity.
- A billable quantity of zero charges nothing (no tier, band or package is entered, so no tier flat
  fee either); only ``FlatPrice`` charges regardless of quantity.
- ``minimum`` and ``maximum`` clamp the total of the period. The minimum is a commitment: it is charged
  even when nothing was used (as Lago's charge minimum is). Prorating it for a partial period is the
  caller's business.
- Every number in a price spec is a non-negative exact decimal with at most 12 decimal places.
- ``sum(component.amount for component in rating.components) == rating.amount.amount`` always.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal, getcontext, setcontext
from enum import StrEnum
from types import MappingProxyType
from typing import ClassVar, Self

from turnus.engine.errors import InvalidAmount, InvalidPriceSpec, InvalidQuantity
from turnus.engine.frozen import slot_init
from turnus.engine.money import (
    EXACT,
    MAX_UNIT_PRICE_DECIMALS,
    Money,
    check_currency,
    decimal_places,
    to_decimal,
)

_ZERO = Decimal(0)
_ONE = Decimal(1)
_HUNDRED = Decimal(100)
_COMMON_KEYS = frozenset({"model", "included_units", "minimum", "maximum"})


class PriceModelCode(StrEnum):
    FLAT = "flat"
    PER_UNIT = "per_unit"
    GRADUATED = "graduated"
    VOLUME = "volume"
    PACKAGE = "package"
    PERCENTAGE = "percentage"
    STAIRSTEP = "stairstep"


class ComponentKind(StrEnum):
    """What a ``RatingComponent`` stands for.

    For ``TIER_UNITS``, ``UNITS``, ``PACKAGES``, ``PERCENTAGE`` and ``TRANSACTION_FEE``
    ``amount == quantity * unit_price``. ``FLAT``, ``TIER_FLAT_FEE``, ``BAND``, ``MINIMUM`` and
    ``MAXIMUM`` have quantity 1. ``TRANSACTION_MINIMUM`` / ``TRANSACTION_MAXIMUM`` count the
    transactions raised or capped, ``unit_price`` is the per-transaction bound and ``amount`` the
    adjustment. ``INCLUDED_UNITS`` describes the free units at price zero.
    """

    FLAT = "flat"
    UNITS = "units"
    INCLUDED_UNITS = "included_units"
    TIER_UNITS = "tier_units"
    TIER_FLAT_FEE = "tier_flat_fee"
    PACKAGES = "packages"
    PERCENTAGE = "percentage"
    TRANSACTION_FEE = "transaction_fee"
    TRANSACTION_MINIMUM = "transaction_minimum"
    TRANSACTION_MAXIMUM = "transaction_maximum"
    BAND = "band"
    MINIMUM = "minimum"
    MAXIMUM = "maximum"


def _spec_number(value: object, field: str) -> Decimal:
    try:
        number = to_decimal(value, field=field)
    except InvalidAmount as error:
        raise InvalidPriceSpec(error.message, field=field) from None
    if decimal_places(number) > MAX_UNIT_PRICE_DECIMALS:
        raise InvalidPriceSpec(f"{field} has more than {MAX_UNIT_PRICE_DECIMALS} decimal places", field=field)
    if number < 0:
        raise InvalidPriceSpec(f"{field} must not be negative", field=field)
    return number


def _optional_spec_number(value: object, field: str) -> Decimal | None:
    return None if value is None else _spec_number(value, field)


def _positive_spec_number(value: object, field: str) -> Decimal:
    number = _spec_number(value, field)
    if number == 0:
        raise InvalidPriceSpec(f"{field} must be greater than zero", field=field)
    return number


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _assign(instance: object, name: str, value: object) -> None:
    object.__setattr__(instance, name, value)


@dataclass(frozen=True, slots=True)
class Tier:
    """Units above the previous tier's ``up_to`` up to and including this ``up_to`` (None: no limit)."""

    up_to: Decimal | None
    unit_price: Decimal
    flat_fee: Decimal = _ZERO

    def __post_init__(self) -> None:
        if self.up_to is not None:
            _assign(self, "up_to", _positive_spec_number(self.up_to, "up_to"))
        _assign(self, "unit_price", _spec_number(self.unit_price, "unit_price"))
        _assign(self, "flat_fee", _spec_number(self.flat_fee, "flat_fee"))

    def to_dict(self) -> dict[str, object]:
        return {
            "up_to": _text(self.up_to),
            "unit_price": str(self.unit_price),
            "flat_fee": str(self.flat_fee),
        }


@dataclass(frozen=True, slots=True)
class Band:
    """A stairstep band: one flat ``price`` for quantities above the previous ``up_to`` up to this one."""

    up_to: Decimal | None
    price: Decimal

    def __post_init__(self) -> None:
        if self.up_to is not None:
            _assign(self, "up_to", _positive_spec_number(self.up_to, "up_to"))
        _assign(self, "price", _spec_number(self.price, "price"))

    def to_dict(self) -> dict[str, object]:
        return {"up_to": _text(self.up_to), "price": str(self.price)}


def _check_steps(steps: object, name: str, kind: type[Tier] | type[Band]) -> tuple[Tier | Band, ...]:
    if not isinstance(steps, list | tuple):
        raise InvalidPriceSpec(f"{name} must be a sequence of {kind.__name__}", field=name)
    if not steps:
        raise InvalidPriceSpec(f"{name} must not be empty", field=name)
    previous: Decimal | None = None
    last = len(steps) - 1
    for index, step in enumerate(steps):
        if not isinstance(step, kind):
            raise InvalidPriceSpec(f"{name}[{index}] must be a {kind.__name__}", field=f"{name}[{index}]")
        field = f"{name}[{index}].up_to"
        if step.up_to is None and index < last:
            raise InvalidPriceSpec(f"only the last of the {name} may be open-ended", field=field)
        if step.up_to is not None and index == last:
            raise InvalidPriceSpec(f"the last of the {name} must be open-ended (up_to null)", field=field)
        if step.up_to is not None and previous is not None and step.up_to <= previous:
            raise InvalidPriceSpec(f"{field} must be greater than the previous up_to {previous}", field=field)
        previous = step.up_to
    return tuple(steps)


@slot_init
@dataclass(frozen=True, slots=True)
class RatingComponent:
    """One describable part of a rating (see ``ComponentKind``); ``tier`` is the 1-based tier or band."""

    kind: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    tier: int | None = None


@slot_init
@dataclass(frozen=True, slots=True)
class Rating:
    """The exact, unrounded charge for a quantity, with the components that make it up."""

    amount: Money
    quantity: Decimal
    billable_quantity: Decimal
    components: tuple[RatingComponent, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class PriceModel(ABC):
    """A price spec. Subclasses add the model's own fields and arithmetic."""

    model: ClassVar[str]
    spec_keys: ClassVar[frozenset[str]]

    included_units: Decimal = _ZERO
    minimum: Decimal | None = None
    maximum: Decimal | None = None

    def __post_init__(self) -> None:
        self._validate()
        _assign(self, "included_units", _spec_number(self.included_units, "included_units"))
        _assign(self, "minimum", _optional_spec_number(self.minimum, "minimum"))
        _assign(self, "maximum", _optional_spec_number(self.maximum, "maximum"))
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise InvalidPriceSpec("maximum must not be below minimum", field="maximum")

    @abstractmethod
    def _validate(self) -> None:
        """Check and normalise the model's own fields; raise InvalidPriceSpec naming the field."""

    @abstractmethod
    def _components(
        self, quantity: Decimal, billable: Decimal, transactions: tuple[Decimal, ...]
    ) -> list[RatingComponent]:
        """The components charged for ``billable`` units (before minimum and maximum)."""

    @abstractmethod
    def _spec_dict(self) -> dict[str, object]:
        """The model's own fields, JSON-safe."""

    @classmethod
    @abstractmethod
    def _from_spec(cls, spec: _SpecReader, common: _Common) -> Self:
        """Build the model from a checked mapping."""

    def to_dict(self) -> dict[str, object]:
        return {
            "model": str(self.model),
            **self._spec_dict(),
            "included_units": str(self.included_units),
            "minimum": _text(self.minimum),
            "maximum": _text(self.maximum),
        }


@dataclass(frozen=True, slots=True)
class FlatPrice(PriceModel):
    """``amount`` per period, whatever the quantity."""

    model: ClassVar[str] = PriceModelCode.FLAT
    spec_keys: ClassVar[frozenset[str]] = frozenset({"amount"})

    amount: Decimal

    def _validate(self) -> None:
        _assign(self, "amount", _spec_number(self.amount, "amount"))

    def _components(
        self, quantity: Decimal, billable: Decimal, transactions: tuple[Decimal, ...]
    ) -> list[RatingComponent]:
        return [RatingComponent(ComponentKind.FLAT, _ONE, self.amount, self.amount)]

    def _spec_dict(self) -> dict[str, object]:
        return {"amount": str(self.amount)}

    @classmethod
    def _from_spec(cls, spec: _SpecReader, common: _Common) -> Self:
        return cls(
            spec.number("amount"),
            included_units=common.included_units,
            minimum=common.minimum,
            maximum=common.maximum,
        )


@dataclass(frozen=True, slots=True)
class PerUnitPrice(PriceModel):
    """``unit_price`` for each billable unit."""

    model: ClassVar[str] = PriceModelCode.PER_UNIT
    spec_keys: ClassVar[frozenset[str]] = frozenset({"unit_price"})

    unit_price: Decimal

    def _validate(self) -> None:
        _assign(self, "unit_price", _spec_number(self.unit_price, "unit_price"))

    def _components(
        self, quantity: Decimal, billable: Decimal, transactions: tuple[Decimal, ...]
    ) -> list[RatingComponent]:
        if billable == 0:
            return []
        return [RatingComponent(ComponentKind.UNITS, billable, self.unit_price, billable * self.unit_price)]

    def _spec_dict(self) -> dict[str, object]:
        return {"unit_price": str(self.unit_price)}

    @classmethod
    def _from_spec(cls, spec: _SpecReader, common: _Common) -> Self:
        return cls(
            spec.number("unit_price"),
            included_units=common.included_units,
            minimum=common.minimum,
            maximum=common.maximum,
        )


def _tier_components(index: int, tier: Tier, units: Decimal) -> list[RatingComponent]:
    number = index + 1
    components = [
        RatingComponent(ComponentKind.TIER_UNITS, units, tier.unit_price, units * tier.unit_price, number)
    ]
    if tier.flat_fee:
        fee = tier.flat_fee
        components.append(RatingComponent(ComponentKind.TIER_FLAT_FEE, _ONE, fee, fee, number))
    return components


def _reached(steps: Sequence[Tier | Band], billable: Decimal) -> int:
    return next(index for index, step in enumerate(steps) if step.up_to is None or billable <= step.up_to)


@dataclass(frozen=True, slots=True)
class GraduatedPrice(PriceModel):
    """Each tier's units at that tier's unit price, plus the flat fee of every tier entered."""

    model: ClassVar[str] = PriceModelCode.GRADUATED
    spec_keys: ClassVar[frozenset[str]] = frozenset({"tiers"})

    tiers: tuple[Tier, ...]

    def _validate(self) -> None:
        _assign(self, "tiers", _check_steps(self.tiers, "tiers", Tier))

    def _components(
        self, quantity: Decimal, billable: Decimal, transactions: tuple[Decimal, ...]
    ) -> list[RatingComponent]:
        components: list[RatingComponent] = []
        lower = _ZERO
        for index, tier in enumerate(self.tiers):
            if billable <= lower:
                break
            upper = billable if tier.up_to is None else min(billable, tier.up_to)
            components += _tier_components(index, tier, upper - lower)
            lower = upper
        return components

    def _spec_dict(self) -> dict[str, object]:
        return {"tiers": [tier.to_dict() for tier in self.tiers]}

    @classmethod
    def _from_spec(cls, spec: _SpecReader, common: _Common) -> Self:
        return cls(
            spec.tiers(),
            included_units=common.included_units,
            minimum=common.minimum,
            maximum=common.maximum,
        )


@dataclass(frozen=True, slots=True)
class VolumePrice(PriceModel):
    """All billable units at the unit price of the tier the quantity reaches, plus that tier's flat fee.

    Unlike graduated pricing, the total can drop when the quantity crosses into a cheaper tier: it
    never decreases exactly when, at every bound, ``up_to * unit_price + flat_fee`` of the tier is at
    most ``up_to * unit_price + flat_fee`` of the next tier.
    """

    model: ClassVar[str] = PriceModelCode.VOLUME
    spec_keys: ClassVar[frozenset[str]] = frozenset({"tiers"})

    tiers: tuple[Tier, ...]

    def _validate(self) -> None:
        _assign(self, "tiers", _check_steps(self.tiers, "tiers", Tier))

    def _components(
        self, quantity: Decimal, billable: Decimal, transactions: tuple[Decimal, ...]
    ) -> list[RatingComponent]:
        if billable == 0:
            return []
        index = _reached(self.tiers, billable)
        return _tier_components(index, self.tiers[index], billable)

    def _spec_dict(self) -> dict[str, object]:
        return {"tiers": [tier.to_dict() for tier in self.tiers]}

    @classmethod
    def _from_spec(cls, spec: _SpecReader, common: _Common) -> Self:
        return cls(
            spec.tiers(),
            included_units=common.included_units,
            minimum=common.minimum,
            maximum=common.maximum,
        )


@dataclass(frozen=True, slots=True)
class PackagePrice(PriceModel):
    """``package_price`` per started block of ``package_size`` units (blocks rounded up)."""

    model: ClassVar[str] = PriceModelCode.PACKAGE
    spec_keys: ClassVar[frozenset[str]] = frozenset({"package_size", "package_price"})

    package_size: Decimal
    package_price: Decimal

    def _validate(self) -> None:
        _assign(self, "package_size", _positive_spec_number(self.package_size, "package_size"))
        _assign(self, "package_price", _spec_number(self.package_price, "package_price"))

    def _components(
        self, quantity: Decimal, billable: Decimal, transactions: tuple[Decimal, ...]
    ) -> list[RatingComponent]:
        if billable == 0:
            return []
        packages, rest = divmod(billable, self.package_size)
        if rest:
            packages += 1
        price = self.package_price
        return [RatingComponent(ComponentKind.PACKAGES, packages, price, packages * price)]

    def _spec_dict(self) -> dict[str, object]:
        return {"package_size": str(self.package_size), "package_price": str(self.package_price)}

    @classmethod
    def _from_spec(cls, spec: _SpecReader, common: _Common) -> Self:
        return cls(
            spec.number("package_size"),
            spec.number("package_price"),
            included_units=common.included_units,
            minimum=common.minimum,
            maximum=common.maximum,
        )


def _bound_adjustment(kind: ComponentKind, bound: Decimal, fees: list[Decimal]) -> list[RatingComponent]:
    if not fees:
        return []
    adjustment = sum((bound - fee for fee in fees), _ZERO)
    return [RatingComponent(kind, Decimal(len(fees)), bound, adjustment)]


@dataclass(frozen=True, slots=True)
class PercentagePrice(PriceModel):
    """Per transaction: ``rate_percent`` of its amount plus ``fixed_fee``, clamped to its bounds.

    Rate it with ``transactions`` (the amounts, in the order they happened) and ``quantity`` equal to
    their number. ``included_units`` must be a whole number: that many first transactions are free.
    ``rate_percent`` is at most 100.
    """

    model: ClassVar[str] = PriceModelCode.PERCENTAGE
    spec_keys: ClassVar[frozenset[str]] = frozenset(
        {"rate_percent", "fixed_fee", "min_per_transaction", "max_per_transaction"}
    )

    rate_percent: Decimal
    fixed_fee: Decimal = _ZERO
    min_per_transaction: Decimal | None = None
    max_per_transaction: Decimal | None = None

    def _validate(self) -> None:
        _assign(self, "rate_percent", _spec_number(self.rate_percent, "rate_percent"))
        if self.rate_percent > _HUNDRED:
            raise InvalidPriceSpec("rate_percent must not exceed 100", field="rate_percent")
        _assign(self, "fixed_fee", _spec_number(self.fixed_fee, "fixed_fee"))
        low = _optional_spec_number(self.min_per_transaction, "min_per_transaction")
        high = _optional_spec_number(self.max_per_transaction, "max_per_transaction")
        if low is not None and high is not None and low > high:
            raise InvalidPriceSpec(
                "max_per_transaction must not be below min_per_transaction", field="max_per_transaction"
            )
        _assign(self, "min_per_transaction", low)
        _assign(self, "max_per_transaction", high)
        included = _spec_number(self.included_units, "included_units")
        if included != included.to_integral_value():
            raise InvalidPriceSpec(
                "included_units of a percentage price counts free transactions: it must be a whole number",
                field="included_units",
            )

    def _components(
        self, quantity: Decimal, billable: Decimal, transactions: tuple[Decimal, ...]
    ) -> list[RatingComponent]:
        if quantity != len(transactions):
            raise InvalidQuantity(
                "percentage pricing rates one unit per transaction: quantity must equal the number of "
                f"transactions ({len(transactions)})",
                field="quantity",
            )
        billed = transactions[int(self.included_units) :]
        if not billed:
            return []
        factor = self.rate_percent / _HUNDRED
        base = sum(billed, _ZERO)
        count = Decimal(len(billed))
        components = [RatingComponent(ComponentKind.PERCENTAGE, base, factor, base * factor)]
        if self.fixed_fee:
            components.append(
                RatingComponent(ComponentKind.TRANSACTION_FEE, count, self.fixed_fee, count * self.fixed_fee)
            )
        fees = [amount * factor + self.fixed_fee for amount in billed]
        low, high = self.min_per_transaction, self.max_per_transaction
        if low is not None:
            below = [fee for fee in fees if fee < low]
            components += _bound_adjustment(ComponentKind.TRANSACTION_MINIMUM, low, below)
        if high is not None:
            above = [fee for fee in fees if fee > high]
            components += _bound_adjustment(ComponentKind.TRANSACTION_MAXIMUM, high, above)
        return components

    def _spec_dict(self) -> dict[str, object]:
        return {
            "rate_percent": str(self.rate_percent),
            "fixed_fee": str(self.fixed_fee),
            "min_per_transaction": _text(self.min_per_transaction),
            "max_per_transaction": _text(self.max_per_transaction),
        }

    @classmethod
    def _from_spec(cls, spec: _SpecReader, common: _Common) -> Self:
        return cls(
            spec.number("rate_percent"),
            spec.number("fixed_fee", _ZERO),
            spec.optional_number("min_per_transaction"),
            spec.optional_number("max_per_transaction"),
            included_units=common.included_units,
            minimum=common.minimum,
            maximum=common.maximum,
        )


@dataclass(frozen=True, slots=True)
class StairstepPrice(PriceModel):
    """One flat price: that of the band the billable quantity falls in (bounds inclusive)."""

    model: ClassVar[str] = PriceModelCode.STAIRSTEP
    spec_keys: ClassVar[frozenset[str]] = frozenset({"bands"})

    bands: tuple[Band, ...]

    def _validate(self) -> None:
        _assign(self, "bands", _check_steps(self.bands, "bands", Band))

    def _components(
        self, quantity: Decimal, billable: Decimal, transactions: tuple[Decimal, ...]
    ) -> list[RatingComponent]:
        if billable == 0:
            return []
        index = _reached(self.bands, billable)
        price = self.bands[index].price
        return [RatingComponent(ComponentKind.BAND, _ONE, price, price, index + 1)]

    def _spec_dict(self) -> dict[str, object]:
        return {"bands": [band.to_dict() for band in self.bands]}

    @classmethod
    def _from_spec(cls, spec: _SpecReader, common: _Common) -> Self:
        return cls(
            spec.bands(),
            included_units=common.included_units,
            minimum=common.minimum,
            maximum=common.maximum,
        )


PRICE_MODELS: Mapping[str, type[PriceModel]] = MappingProxyType(
    {
        cls.model: cls
        for cls in (
            FlatPrice,
            PerUnitPrice,
            GraduatedPrice,
            VolumePrice,
            PackagePrice,
            PercentagePrice,
            StairstepPrice,
        )
    }
)


_MODEL_CLASSES = frozenset(PRICE_MODELS.values())


@dataclass(frozen=True, slots=True)
class _Common:
    included_units: Decimal
    minimum: Decimal | None
    maximum: Decimal | None


@contextmanager
def _prefixed(prefix: str) -> Iterator[None]:
    try:
        yield
    except InvalidPriceSpec as error:
        field = prefix if error.field is None else f"{prefix}.{error.field}"
        raise InvalidPriceSpec(error.message, field=field) from None


class _SpecReader:
    """Reads a JSON-like mapping, naming each bad field by its path (``tiers[1].up_to``)."""

    __slots__ = ("_data", "_path")

    def __init__(self, data: object, path: str, allowed: frozenset[str]) -> None:
        if not isinstance(data, Mapping):
            raise InvalidPriceSpec(f"{path or 'price'} must be an object", field=path or None)
        for key in data:
            if not isinstance(key, str) or key not in allowed:
                raise InvalidPriceSpec(f"unknown key {key!r}", field=self._join(path, str(key)))
        self._data: Mapping[str, object] = data
        self._path = path

    @staticmethod
    def _join(path: str, key: str) -> str:
        return f"{path}.{key}" if path else key

    def _field(self, key: str) -> str:
        return self._join(self._path, key)

    def _required(self, key: str) -> object:
        if key not in self._data:
            raise InvalidPriceSpec(f"{self._field(key)} is required", field=self._field(key))
        return self._data[key]

    def _decimal(self, value: object, key: str) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
            raise InvalidPriceSpec(
                f"{self._field(key)} must be a decimal string or an integer, not {type(value).__name__}",
                field=self._field(key),
            )
        return _spec_number(value, self._field(key))

    def number(self, key: str, default: Decimal | None = None) -> Decimal:
        if default is not None and key not in self._data:
            return default
        return self._decimal(self._required(key), key)

    def optional_number(self, key: str) -> Decimal | None:
        value = self._data.get(key)
        return None if value is None else self._decimal(value, key)

    def optional_bound(self, key: str) -> Decimal | None:
        value = self._required(key)
        return None if value is None else self._decimal(value, key)

    def _items(self, key: str) -> list[tuple[str, _SpecReader]]:
        items = self._required(key)
        if not isinstance(items, list | tuple):
            raise InvalidPriceSpec(f"{self._field(key)} must be a list", field=self._field(key))
        if not items:
            raise InvalidPriceSpec(f"{self._field(key)} must not be empty", field=self._field(key))
        readers = []
        for index, item in enumerate(items):
            path = f"{self._field(key)}[{index}]"
            allowed = frozenset({"up_to", "unit_price", "flat_fee"} if key == "tiers" else {"up_to", "price"})
            readers.append((path, _SpecReader(item, path, allowed)))
        return readers

    def tiers(self) -> tuple[Tier, ...]:
        tiers = []
        for path, item in self._items("tiers"):
            up_to, unit_price = item.optional_bound("up_to"), item.number("unit_price")
            flat_fee = item.number("flat_fee", _ZERO)
            with _prefixed(path):
                tiers.append(Tier(up_to, unit_price, flat_fee))
        return tuple(tiers)

    def bands(self) -> tuple[Band, ...]:
        bands = []
        for path, item in self._items("bands"):
            up_to, price = item.optional_bound("up_to"), item.number("price")
            with _prefixed(path):
                bands.append(Band(up_to, price))
        return tuple(bands)


def price_from_dict(data: Mapping[str, object]) -> PriceModel:
    """The price model described by ``data`` (``{"model": "graduated", "tiers": [...], ...}``).

    Decimals are strings or integers (never floats). Raises ``InvalidPriceSpec`` whose ``field`` is the
    path of the bad input, e.g. ``tiers[1].up_to``.
    """
    if not isinstance(data, Mapping):
        raise InvalidPriceSpec("a price spec must be an object")
    code = data.get("model")
    if not isinstance(code, str) or code not in PRICE_MODELS:
        allowed = ", ".join(PRICE_MODELS)
        raise InvalidPriceSpec(f"model must be one of: {allowed}; got {code!r}", field="model")
    cls = PRICE_MODELS[code]
    spec = _SpecReader(data, "", _COMMON_KEYS | cls.spec_keys)
    common = _Common(
        spec.number("included_units", _ZERO), spec.optional_number("minimum"), spec.optional_number("maximum")
    )
    return cls._from_spec(spec, common)


def _quantity(value: object, field: str) -> Decimal:
    try:
        quantity = to_decimal(value, field=field)
    except InvalidAmount as error:
        raise InvalidQuantity(error.message, field=field) from None
    if quantity < 0:
        raise InvalidQuantity(f"{field} must not be negative", field=field)
    return quantity


def rate(
    price: PriceModel, quantity: Decimal, currency: str, *, transactions: Sequence[Decimal] = ()
) -> Rating:
    """Rate ``quantity`` units (the transactions' amounts for a percentage price) in ``currency``.

    Returns the exact, unrounded amount; round it where the invoice rounds (the line net amount).
    """
    if type(price) not in _MODEL_CLASSES and not isinstance(price, PriceModel):
        raise InvalidPriceSpec(f"price must be a PriceModel, not {type(price).__name__}", field="price")
    check_currency(currency)
    amount_of_units = _quantity(quantity, "quantity")
    amounts = (
        ()
        if type(transactions) is tuple and not transactions
        else tuple(_quantity(value, f"transactions[{index}]") for index, value in enumerate(transactions))
    )
    if amounts and not isinstance(price, PercentagePrice):
        raise InvalidQuantity("transactions apply to percentage prices only", field="transactions")
    # The models' operators compute in EXACT. Swapping it in directly (and back) costs half of what
    # localcontext(EXACT) does, which copies the context on every call; arithmetic is the same.
    caller_context = getcontext()
    setcontext(EXACT)
    try:
        billable = max(_ZERO, amount_of_units - price.included_units)
        components: list[RatingComponent] = []
        free = amount_of_units - billable
        if free:
            components.append(RatingComponent(ComponentKind.INCLUDED_UNITS, free, _ZERO, _ZERO))
        components += price._components(amount_of_units, billable, amounts)
        subtotal = sum([component.amount for component in components], _ZERO)
        total = subtotal
        if price.minimum is not None and subtotal < price.minimum:
            total = price.minimum
            top_up = total - subtotal
            components.append(RatingComponent(ComponentKind.MINIMUM, _ONE, top_up, top_up))
        if price.maximum is not None and subtotal > price.maximum:
            total = price.maximum
            cut = total - subtotal
            components.append(RatingComponent(ComponentKind.MAXIMUM, _ONE, cut, cut))
    finally:
        setcontext(caller_context)
    return Rating(Money._unchecked(total, currency), amount_of_units, billable, tuple(components))
