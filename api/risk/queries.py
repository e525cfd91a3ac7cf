import strawberry

from api.context import Info
from api.fields import field
from api.risk.types import RiskDistribution
from domain.risk.distribution import risk_distribution


@strawberry.type
class RiskQuery:
    @field(
        "The shop's current scores per band, per sign shown and in `buckets` equal bins of "
        "probability (1 to 100)."
    )
    async def risk_distribution(self, info: Info, buckets: int = 10) -> RiskDistribution:
        distribution = await info.context.run(risk_distribution, buckets=buckets)
        return RiskDistribution.from_distribution(distribution)
