"""`riskScoreChanged(bands, signs)`: the caller's shop's band changes as the worker announces them.

Built on the `risk.changed` events (see `domain.risk.runs.publish_changes`), so it reaches
subscribers on any API process through the event bus. A run that changes more bands than it
announces one by one publishes a summary instead, which this subscription does not push (the
`events` subscription carries it): re-read the listing then.
"""

import uuid
from collections.abc import AsyncIterator, Collection, Mapping
from datetime import datetime

import strawberry

from api.context import Info
from api.errors import Forbidden
from api.event.subscriptions import merge
from api.fields import subscription
from api.permissions import allowed_topics
from api.relay import encode_id
from domain.events import Event, Topic
from domain.risk.bands import Band
from domain.risk.signs import Sign


@strawberry.type(description="A customer's risk band changed.")
class RiskScoreChange:
    customer_id: strawberry.ID = strawberry.field(description="The customer's global ID.")
    previous_band: Band | None = strawberry.field(
        description="The band before; null when the customer had no score yet."
    )
    band: Band
    probability: float | None = strawberry.field(
        description="The new P(no purchase within the horizon); null when unscored."
    )
    top_sign: Sign | None = strawberry.field(
        description="The sign that adds most to the new score; null without reasons."
    )
    signs: list[Sign] = strawberry.field(
        description="The signs that show in the new score (strength 0.5 or more)."
    )
    as_of: datetime = strawberry.field(description="The moment the new score describes.")


def _sign(name: object) -> Sign | None:
    text = str(name or "").upper()
    return Sign[text] if text in Sign.__members__ else None


def change_of(data: Mapping[str, object]) -> RiskScoreChange | None:
    """The change one `risk.changed` event announces; None for a summary or a malformed one."""
    try:
        customer = uuid.UUID(str(data["customer_id"]))
        band = Band(str(data["band"]))
        previous = data.get("previous_band")
        as_of = datetime.fromisoformat(str(data["as_of"]))
    except (KeyError, ValueError):
        return None
    probability = data.get("probability")
    shown = [_sign(name) for name in str(data.get("signs") or "").split(",")]
    return RiskScoreChange(
        customer_id=encode_id("Customer", customer),
        previous_band=None if previous is None else Band(str(previous)),
        band=band,
        probability=float(probability) if isinstance(probability, int | float) else None,
        top_sign=_sign(data.get("top_sign")),
        signs=[sign for sign in shown if sign is not None],
        as_of=as_of,
    )


def wanted(change: RiskScoreChange, bands: Collection[Band], signs: Collection[Sign]) -> bool:
    """The new band is among `bands` and one of `signs` shows; an empty collection allows all."""
    if bands and change.band not in bands:
        return False
    return not signs or any(sign in signs for sign in change.signs)


async def _changes(
    stream: AsyncIterator[Event], bands: frozenset[Band], signs: frozenset[Sign]
) -> AsyncIterator[RiskScoreChange]:
    async for event in merge([stream]):
        change = change_of(event.data)
        if change is not None and wanted(change, bands, signs):
            yield change


@strawberry.type
class RiskSubscription:
    @subscription(
        "The shop's customers whose risk band changes, as it happens. `bands` keeps changes "
        "into one of these bands; `signs` those whose new score shows one of these signs "
        "(strength 0.5 or more). Omitted or empty: every change."
    )
    async def risk_score_changed(
        self, info: Info, bands: list[Band] | None = None, signs: list[Sign] | None = None
    ) -> AsyncIterator[RiskScoreChange]:
        context = info.context
        if Topic.RISK_CHANGED not in allowed_topics(context.role):
            raise Forbidden("this API key may not subscribe to risk changes")
        stream = context.events.subscribe(context.shop_id, Topic.RISK_CHANGED)
        return _changes(stream, frozenset(bands or ()), frozenset(signs or ()))
