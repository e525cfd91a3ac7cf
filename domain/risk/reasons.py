"""Reasons as stored: per customer a JSON array of its signs, largest contribution first.

Each element is `{"sign", "strength", "contribution", "evidence": {name: number}}`: what
`RiskScores.reasons_of` gives, numbers rounded to 4 decimals, without the one-line summary
(presentation, rendered from the evidence when shown). Built column-wise with one string
template per (sign, evidence shape), because a million customers' reasons built one object at
a time would cost more than fitting the model.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from domain.risk.scoring import RiskScores
from domain.risk.signs import SHOWN_AT, Sign

DECIMALS = 4


def sign_name(sign: Sign) -> str:
    return sign.name.lower()


def reason_documents(scores: RiskScores) -> list[str]:
    """One JSON array per customer of `scores` ("[]" when no sign applies)."""
    size = int(scores.state.shape[0])
    fragments = np.full((len(Sign), size), "", dtype=object)
    for sign in Sign:
        fragments[sign] = _fragments(scores, sign, size)
    ranked = fragments[scores.reasons.T.astype(np.int64), np.arange(size)]
    return [
        "[" + ",".join(part for part in parts if part) + "]" for parts in zip(*ranked, strict=True)
    ]


def sign_mask(signs: Iterable[Sign]) -> int:
    """The bits of `signs` in a `shown_signs` mask: bit `sign` for each."""
    mask = 0
    for sign in signs:
        mask |= 1 << int(sign)
    return mask


def shown_masks(scores: RiskScores) -> NDArray[np.int16]:
    """Per customer, the bits (`sign_mask`) of the signs its stored reasons show: among the
    reasons, with the stored (rounded) strength at least `SHOWN_AT`."""
    stored = np.round(scores.strength, DECIMALS)
    shown = scores.applies & (stored >= SHOWN_AT) & scores.scorable[:, np.newaxis]
    bits = np.array([1 << int(sign) for sign in Sign], dtype=np.int16)
    masks: NDArray[np.int16] = (shown.astype(np.int16) * bits).sum(axis=1).astype(np.int16)
    return masks


def shown_mask(reasons: Sequence[Any]) -> int:
    """`shown_masks` of one customer's stored reasons (elements as `reason_documents` writes)."""
    return sign_mask(Sign[name.upper()] for name in stored_signs(reasons).shown)


def top_signs(scores: RiskScores) -> NDArray[np.int8]:
    """Each customer's sign of largest contribution among those that apply, -1 if none."""
    applies = np.take_along_axis(scores.applies, scores.reasons.astype(np.int64), axis=1)
    first = np.argmax(applies, axis=1)
    top = scores.reasons[np.arange(scores.reasons.shape[0]), first]
    return np.where(applies.any(axis=1), top, np.int8(-1)).astype(np.int8)


@dataclass(frozen=True, slots=True)
class StoredSigns:
    """What a stored reasons array says at a glance: its top sign and the signs that show."""

    top: str | None  # the sign of largest contribution; None without reasons
    shown: tuple[str, ...]  # signs with strength at least `SHOWN_AT`, in reason order


def stored_signs(reasons: Sequence[Any]) -> StoredSigns:
    """`StoredSigns` of one customer's stored reasons (elements as `reason_documents` writes)."""
    names: list[str] = []
    shown: list[str] = []
    for element in reasons:
        if not isinstance(element, dict):
            continue
        name = str(element.get("sign", ""))
        names.append(name)
        strength = element.get("strength", 0.0)
        if isinstance(strength, int | float) and strength >= SHOWN_AT:
            shown.append(name)
    return StoredSigns(names[0] if names else None, tuple(shown))


def _fragments(scores: RiskScores, sign: Sign, size: int) -> NDArray[np.object_]:
    result = np.full(size, "", dtype=object)
    applies = scores.applies[:, sign]
    # `Evidence.numbers` picks its names by whether the customer is a first-time buyer; each
    # group's names are read from one of its rows, so they are exactly what it would give.
    first_timer = scores.evidence.orders == 1
    for group in (applies & first_timer, applies & ~first_timer):
        rows = np.flatnonzero(group)
        if rows.shape[0] == 0:
            continue
        names = list(scores.evidence.numbers(sign, int(rows[0])))
        template = (
            f'{{"sign":"{sign_name(sign)}","strength":%r,"contribution":%r,"evidence":{{'
            + ",".join(f'"{name}":%r' for name in names)
            + "}}"
        )
        columns = [
            _numbers(scores.strength[rows, sign]),
            _numbers(scores.contribution[rows, sign]),
            *(_numbers(_column(scores, name, rows)) for name in names),
        ]
        result[rows] = [template % values for values in zip(*columns, strict=True)]
    return result


def _column(scores: RiskScores, name: str, rows: NDArray[np.intp]) -> NDArray[np.float64]:
    value = getattr(scores.evidence, name)
    if isinstance(value, np.ndarray):
        return np.asarray(value[rows], dtype=np.float64)
    return np.full(rows.shape[0], float(value))


def _numbers(values: NDArray[np.float64]) -> list[float | int]:
    """JSON-ready numbers: rounded, integral values as ints, never NaN or infinite."""
    clean = np.round(np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0), DECIMALS)
    clean = clean + 0.0  # no "-0.0"
    integral = clean == np.round(clean)
    if integral.all() and np.abs(clean).max(initial=0.0) < 2**53:
        return clean.astype(np.int64).tolist()  # type: ignore[no-any-return]
    return clean.tolist()  # type: ignore[no-any-return]
