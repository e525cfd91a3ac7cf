import strawberry

from api.context import Info
from api.fields import field
from api.lookahead import selects
from api.order.types import Order, prefetch_lines
from api.relay import Connection, page_request, to_connection
from domain.order.service import ORDER_SORTS, OrderSort, count_orders, list_orders


@strawberry.type
class OrderQuery:
    @field(
        "The shop's orders. `query` matches part of the order number or of a line's "
        "title or SKU (any case)."
    )
    async def orders(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        query: str | None = None,
        sort_key: OrderSort = OrderSort.ORDERED_AT,
        reverse: bool = False,
    ) -> Connection[Order]:
        column = ORDER_SORTS[sort_key]
        request = page_request(
            first=first,
            after=after,
            last=last,
            before=before,
            sort_key=sort_key.name,
            column=column,
            reverse=reverse,
        )
        context = info.context
        page = await context.run(list_orders, request, sort=sort_key, search=query)
        connection = to_connection(
            page,
            sort_key=sort_key.name,
            column=column,
            node=Order.from_row,
            count=lambda: context.run(count_orders, search=query),
        )
        if selects(info, "edges", "node", "lines"):
            await prefetch_lines(info, [edge.node for edge in connection.edges])
        return connection
