"""The error root of Turnus and the errors the billing engine raises.

Every error carries a stable snake_case ``code`` that API clients may rely on.
Each class's docstring says what the caller should do about it.
"""

from __future__ import annotations


class TurnusError(Exception):
    """Root of every error Turnus raises on purpose.

    Catch this to handle any expected failure; read ``code`` to tell them apart
    and ``field`` to learn which input was at fault, if any.
    """

    code: str = "turnus_error"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code


class EngineError(TurnusError):
    """A billing-engine rule refused the input.

    Correct the input named in ``field`` (or the call) and try again; retrying
    unchanged gives the same error, because the engine is deterministic.
    """

    code = "engine_error"


class InvalidAmount(EngineError):
    """An amount is not an exact decimal (a float, NaN, infinity, or too many decimals).

    Pass amounts as ``Decimal``, ``int`` or a decimal string, with at most the
    allowed number of decimal places.
    """

    code = "invalid_amount"


class UnknownCurrency(EngineError):
    """The currency is not an ISO 4217 code Turnus knows.

    Use a three-letter ISO 4217 code such as ``EUR`` or ``USD``.
    """

    code = "unknown_currency"


class CurrencyMismatch(EngineError):
    """Two amounts in different currencies were combined.

    Convert or keep them apart; Turnus never mixes currencies in one sum.
    """

    code = "currency_mismatch"


class InvalidPeriod(EngineError):
    """A billing interval, anchor, timezone or period bound is impossible.

    Fix the interval (positive count, known unit), the timezone (an IANA name)
    or the bounds (start before end, aware datetimes).
    """

    code = "invalid_period"


class InvalidPriceSpec(EngineError):
    """A price specification is inconsistent (unordered tiers, a negative price, a zero package size...).

    Fix the charge definition named in ``field``; the message says which rule it breaks.
    """

    code = "invalid_price_spec"


class InvalidQuantity(EngineError):
    """A quantity is negative or otherwise unusable for rating.

    Pass a non-negative decimal quantity.
    """

    code = "invalid_quantity"


class InvalidAggregation(EngineError):
    """A usage metric definition or an event cannot be aggregated (missing or non-numeric property...).

    Fix the metric definition or send events carrying the property the metric reads.
    """

    code = "invalid_aggregation"


class InvalidDiscount(EngineError):
    """A discount definition is inconsistent (percentage over 100, negative amount, bad duration...).

    Fix the coupon or discount definition named in ``field``.
    """

    code = "invalid_discount"


class TaxError(EngineError):
    """The VAT treatment cannot be determined (unknown country, no rate for the date...).

    Check the seller's and buyer's countries, the tax category and the supply date.
    """

    code = "tax_error"


class InvalidInvoice(EngineError):
    """Invoice lines cannot be composed into an invoice (mixed currencies, missing tax...).

    Fix the lines handed to the composer; the message names the line at fault.
    """

    code = "invalid_invoice"


class InvalidTransition(EngineError):
    """The subscription cannot make this lifecycle transition from its current state.

    Read the message for the reason (for example "a cancelled subscription cannot
    be paused"); change the request, or first make the transition it names.
    """

    code = "invalid_transition"
