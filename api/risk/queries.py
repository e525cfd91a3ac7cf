import strawberry

from api.context import Info
from api.fields import field
from api.risk.types import RiskBandCount
from domain.risk.queries import band_counts


@strawberry.type
class RiskQuery:
    @field("How many of the shop's customers are in each risk band, every band listed.")
    async def risk_distribution(self, info: Info) -> list[RiskBandCount]:
        counts = await info.context.run(band_counts)
        return [RiskBandCount(band=band, count=count) for band, count in counts.items()]
