"""The frontend-shaped read both servers answer, and how their answers are compared.

A customer list screen: the first page of customers with each one's mall identities and the
last five orders with their lines. Both servers must return the same JSON value for it.
"""

import json
from collections.abc import Iterator

PAGE_SIZE = 50
RECENT_ORDERS = 5

_MONEY = "{ amount currency formatted }"

DOCUMENT = f"""
query CustomerList($first: Int!) {{
  customers(first: $first) {{
    edges {{
      cursor
      node {{
        id
        displayName
        email
        phone
        birthDate
        marketingRestricted
        firstOrderAt
        lastOrderAt
        orderCount
        totalSpent {_MONEY}
        createdAt
        identities {{ id platform externalId email emailMasked }}
        orders(last: {RECENT_ORDERS}) {{
          edges {{
            node {{
              id
              externalId
              platform
              orderedAt
              status
              itemQuantity
              total {_MONEY}
              lines {{
                position
                sku
                title
                quantity
                unitPrice {_MONEY}
                amount {_MONEY}
              }}
            }}
          }}
          pageInfo {{ hasPreviousPage }}
        }}
      }}
    }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}
"""


def request_body(page_size: int = PAGE_SIZE) -> bytes:
    """The POST body of the read, as a GraphQL client sends it."""
    payload = {
        "query": DOCUMENT,
        "operationName": "CustomerList",
        "variables": {"first": page_size},
    }
    return json.dumps(payload, separators=(",", ":")).encode()


class AnswerError(Exception):
    """A server's answer to the read is not a successful, complete result."""


def check_answer(body: bytes, *, page_size: int = PAGE_SIZE) -> object:
    """The parsed answer; `AnswerError` for GraphQL errors, a missing page or a short page."""
    try:
        answer = json.loads(body)
    except ValueError as error:
        raise AnswerError(f"not JSON: {body[:200]!r}") from error
    if not isinstance(answer, dict):
        raise AnswerError(f"not a JSON object: {body[:200]!r}")
    if "errors" in answer:
        raise AnswerError(f"GraphQL errors: {json.dumps(answer['errors'])[:500]}")
    try:
        edges = answer["data"]["customers"]["edges"]
    except (KeyError, TypeError) as error:
        raise AnswerError(f"no data.customers.edges in {body[:200]!r}") from error
    if not isinstance(edges, list) or len(edges) != page_size:
        count = len(edges) if isinstance(edges, list) else edges
        raise AnswerError(f"expected {page_size} customers, got {count}")
    return answer


def differences(left: object, right: object, path: str = "$") -> Iterator[str]:
    """Where two JSON values differ, as `$.data.customers…` paths with both values."""
    if isinstance(left, dict) and isinstance(right, dict):
        for key in sorted(left.keys() | right.keys()):
            if key not in left or key not in right:
                where = "left" if key not in left else "right"
                yield f"{path}.{key}: missing on the {where}"
            else:
                yield from differences(left[key], right[key], f"{path}.{key}")
    elif isinstance(left, list) and isinstance(right, list):
        if len(left) != len(right):
            yield f"{path}: {len(left)} items against {len(right)}"
        for index, (a, b) in enumerate(zip(left, right, strict=False)):
            yield from differences(a, b, f"{path}[{index}]")
    elif type(left) is not type(right) or left != right:
        yield f"{path}: {left!r} against {right!r}"
