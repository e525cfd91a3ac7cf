import json

import numpy as np

from domain.risk.history import order_columns
from domain.risk.reasons import reason_documents, sign_name, top_signs
from domain.risk.scoring import RiskScores, score_customers
from tests.domain.risk.simulate import subscription_shop


def _expected(scores: RiskScores, row: int) -> list[dict[str, object]]:
    return [
        {
            "sign": sign_name(reason.sign),
            "strength": round(reason.strength, 4),
            "contribution": round(reason.contribution, 4),
            "evidence": {name: round(value, 4) for name, value in reason.evidence.items()},
        }
        for reason in scores.reasons_of(row)
    ]


def test_documents_are_the_reasons_of_every_customer_as_json() -> None:
    shop = subscription_shop(2000, seed=31)
    scores = score_customers(shop.orders, shop.as_of, shop.horizon, subscriptions=shop.events)

    documents = reason_documents(scores)

    assert len(documents) == 2000
    for row, document in enumerate(documents):
        assert json.loads(document) == _expected(scores, row)
    # All three signs occur, first-time buyers' and repeat buyers' evidence both.
    names = {item["sign"] for document in documents for item in json.loads(document)}
    assert names == {"interval", "basket", "subscription"}


def test_customers_without_a_score_have_no_reasons_and_no_top_sign() -> None:
    orders = order_columns(
        3,
        customer=[1, 2, 2],
        day=[10.0, 20.0, 20.5],
        amount=[1000.0, 0.0, 500.0],
        quantity=[1.0, 0.0, 1.0],
        state=[1, 0, 0],  # customer 1 only cancelled; 0 has no orders
    )
    scores = score_customers(orders, 100.0, 90)

    documents = reason_documents(scores)
    top = top_signs(scores)

    assert documents[0] == "[]"
    assert documents[1] == "[]"
    assert [item["sign"] for item in json.loads(documents[2])] == [
        sign_name(reason.sign) for reason in scores.reasons_of(2)
    ]
    assert top.tolist()[:2] == [-1, -1]
    assert top[2] == scores.reasons_of(2)[0].sign


def test_numbers_are_finite_json_numbers() -> None:
    shop = subscription_shop(500, seed=32)
    scores = score_customers(shop.orders, shop.as_of, shop.horizon, subscriptions=shop.events)

    for document in reason_documents(scores):
        for item in json.loads(document):
            values = [item["strength"], item["contribution"], *item["evidence"].values()]
            assert all(isinstance(v, int | float) and np.isfinite(v) for v in values)
