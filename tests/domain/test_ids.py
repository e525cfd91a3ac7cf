import time
import uuid

from domain.ids import new_id


def test_new_ids_are_uuid7_with_the_time_and_74_random_bits() -> None:
    before = time.time_ns() // 1_000_000
    ids = [new_id() for _ in range(2_000)]
    after = time.time_ns() // 1_000_000

    assert all(value.version == 7 and value.variant == uuid.RFC_4122 for value in ids)
    assert all(before <= value.int >> 80 <= after for value in ids)
    assert len(set(ids)) == len(ids)
    # Every random bit is seen both set and clear; version and variant bits never vary.
    random_bits = ((1 << 80) - 1) & ~(0xF << 76) & ~(0b11 << 62)
    seen_set, seen_clear = 0, 0
    for value in ids:
        seen_set |= value.int
        seen_clear |= ~value.int
    assert seen_set & random_bits == random_bits
    assert seen_clear & random_bits == random_bits
    assert (seen_set & seen_clear) & ((1 << 80) - 1) == random_bits
