"""`Money`: an integer amount in the currency's minor unit, with a display form."""

import strawberry

from api.scalars import BigInt

# Symbol and number of minor-unit digits (ISO 4217) of the currencies shops here sell in.
CURRENCIES: dict[str, tuple[str, int]] = {
    "JPY": ("¥", 0),
    "USD": ("$", 2),
    "EUR": ("€", 2),
    "GBP": ("£", 2),
    "CNY": ("CN¥", 2),
    "KRW": ("₩", 0),
    "TWD": ("NT$", 2),
}


def format_money(amount: int, currency: str) -> str:
    """`¥3,280` for (3280, "JPY"); other currencies by their minor-unit digits."""
    symbol, digits = CURRENCIES.get(currency, (f"{currency} ", 2))
    sign = "-" if amount < 0 else ""
    units, minor = divmod(abs(amount), 10**digits)
    text = f"{units:,}" if digits == 0 else f"{units:,}.{minor:0{digits}d}"
    return f"{sign}{symbol}{text}"


@strawberry.type(description="An amount of money in the minor unit of its currency.")
class Money:
    amount: BigInt = strawberry.field(
        description="In the currency's minor unit: yen for JPY, cents for USD."
    )
    currency: str = strawberry.field(description="ISO 4217 code, like JPY.")
    # Formatted up front: a plain attribute is far cheaper for GraphQL to serve than a resolver.
    formatted: str = strawberry.field(description="For display, like ¥3,280.")


def money(amount: int, currency: str) -> Money:
    return Money(amount=BigInt(amount), currency=currency, formatted=format_money(amount, currency))
