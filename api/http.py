"""`/graphql` over HTTP (POST only, key checked first) and over `graphql-transport-ws`."""

import json
from collections.abc import Mapping
from typing import Any

import orjson
from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError, MissingQueryError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.ides import get_graphql_ide_html
from strawberry.schema import BaseSchema
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET, UnsetType

from api.auth import (
    authenticate_key,
    bearer_key,
    connection_key,
    principal_of,
    unauthenticated,
)
from api.context import Caller, Services
from api.request_id import request_id_of
from api.unit_of_work import read_without_transaction

HTTP_OPERATIONS = frozenset({OperationType.QUERY, OperationType.MUTATION})


def _error(
    status: int, message: str, code: str, headers: Mapping[str, str] | None = None
) -> Response:
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return JSONResponse(body, status_code=status, headers=headers)


class GraphQLView(GraphQL[Caller, None]):
    """Strawberry's ASGI view with Kizuki's transport rules and WebSocket authentication."""

    def __init__(self, schema: BaseSchema, services: Services) -> None:
        super().__init__(
            schema,
            graphql_ide=None,
            allow_queries_via_get=False,
            # graphql-transport-ws only: the legacy graphql-ws protocol is off.
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        )
        self.services = services

    def encode_json(self, data: object) -> str:
        # orjson: a large page encodes several times faster than with the json module. Text,
        # not bytes, because graphql-transport-ws sends text frames.
        return orjson.dumps(data).decode()

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        # strawberry's, with the body encoded straight to bytes (no round trip through text).
        response = Response(orjson.dumps(response_data), media_type="application/json")
        response.headers.raw.extend(sub_response.headers.raw)
        if sub_response.background:
            response.background = sub_response.background
        if sub_response.status_code:
            response.status_code = sub_response.status_code
        return response

    async def get_context(self, request: Any, response: Any) -> Caller:
        # Reached for WebSockets only: HTTP requests arrive with their caller already made.
        return Caller(self.services, request_id_of(request.scope))

    async def on_ws_connect(self, context: Caller) -> UnsetType | dict[str, object] | None:
        raw_key = connection_key(context.connection_params)
        principal = (
            None if raw_key is None else await authenticate_key(self.services.sessions, raw_key)
        )
        if principal is None:
            raise ConnectionRejectionError({"message": "a valid API key is required"})
        context.principal = principal
        acknowledged: UnsetType = UNSET
        return acknowledged

    async def execute_single(
        self,
        request: Request,
        request_adapter: Any,
        sub_response: Response,
        context: Caller,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        # Subscriptions run over the WebSocket only; HTTP answers queries and mutations.
        try:
            return await self.schema.execute(
                request_data.query,
                root_value=root_value,
                variable_values=request_data.variables,
                context_value=context,
                operation_name=request_data.operation_name,
                allowed_operation_types=HTTP_OPERATIONS,
                operation_extensions=request_data.extensions,
            )
        except CannotGetOperationTypeError as error:
            raise HTTPException(400, error.as_http_error_reason()) from error
        except InvalidOperationTypeError as error:
            if error.operation_type is OperationType.SUBSCRIPTION:
                reason = "subscriptions run over the graphql-transport-ws WebSocket, not POST"
            else:
                reason = error.as_http_error_reason("POST")
            raise HTTPException(400, reason) from error
        except MissingQueryError as error:
            raise HTTPException(400, "no GraphQL query in the request") from error


def graphiql_page(headers: Mapping[str, str] | None) -> str:
    """GraphiQL, sending `headers` with every request and in `connection_init`."""
    html = get_graphql_ide_html("graphiql")
    literal = json.dumps(dict(headers or {}))
    # Safe inside <script>: no "</script>" or HTML entity can be formed.
    literal = literal.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    replacements = {
        "const defaultHeaders = {};": f"const defaultHeaders = {literal};",
        "subscriptionUrl,\n      });": (
            "subscriptionUrl,\n        wsConnectionParams: defaultHeaders,\n      });"
        ),
    }
    for old, new in replacements.items():
        if old not in html:
            raise RuntimeError(f"strawberry's GraphiQL page changed: {old!r} not found")
        html = html.replace(old, new)
    return html


class GraphQLEndpoint:
    def __init__(self, view: GraphQLView, services: Services, graphiql: str | None) -> None:
        self.view = view
        self.services = services
        self.graphiql = graphiql

    async def http(self, request: Request) -> Response:
        if request.method in ("GET", "HEAD"):
            return self._get(request)
        raw_key = bearer_key(request.headers.get("authorization"))
        if raw_key is None:
            return unauthenticated(
                "an API key is required: send Authorization: Bearer <key>", invalid=False
            )
        async with self.services.sessions() as session:
            # Most operations only read; a mutation leaves this for a transaction of its own.
            await read_without_transaction(session)
            principal = await principal_of(session, raw_key)
            if principal is None:
                return unauthenticated("the API key is invalid or revoked", invalid=True)
            caller = Caller(self.services, request_id_of(request.scope), principal, session)
            try:
                return await self.view.run(request, context=caller)
            except HTTPException as error:
                return _error(error.status_code, error.reason, "BAD_REQUEST")

    def _get(self, request: Request) -> Response:
        if "query" in request.query_params:
            return _error(
                405,
                "GraphQL operations are sent with POST",
                "METHOD_NOT_ALLOWED",
                headers={"Allow": "POST"},
            )
        if self.graphiql is None:
            return _error(404, "not found", "NOT_FOUND")
        return HTMLResponse(self.graphiql)

    async def websocket(self, websocket: WebSocket) -> None:
        await self.view.run(websocket)
