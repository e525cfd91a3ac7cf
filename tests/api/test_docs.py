"""The examples of docs/graphql.md run as written."""

import re
from pathlib import Path

import pytest

from tests.api.conftest import GraphQLClient
from tests.api.world import ShopWorld

DOC = Path(__file__).resolve().parents[2] / "docs" / "graphql.md"
EXAMPLES = re.findall(r"```graphql\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)


def test_the_guide_has_examples() -> None:
    assert len(EXAMPLES) >= 6


@pytest.mark.parametrize("example", [e for e in EXAMPLES if not e.startswith("subscription")])
async def test_each_example_runs_without_errors(
    client: GraphQLClient, shop_a: ShopWorld, example: str
) -> None:
    data = await client.data(example, key=shop_a.admin)

    assert data
    assert "UserError" not in str(data)
