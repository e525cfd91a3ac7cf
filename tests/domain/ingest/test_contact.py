import hashlib

import pytest

from domain.ingest.contact import e164, normalise_email, phone_hash


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("090-1234-5678", "+819012345678"),
        ("０９０ー１２３４ー５６７８".replace("ー", "-"), "+819012345678"),
        ("(03) 1234-5678", "+81312345678"),
        ("+81 90 1234 5678", "+819012345678"),
        ("+81-090-1234-5678", "+819012345678"),
        ("819012345678", "+819012345678"),
        ("0120-123-456", "+81120123456"),
        ("+1 (415) 555-0100", "+14155550100"),
        ("12345", None),
        ("090-1234-567", None),
        ("tel: 090", None),
        ("", None),
        (None, None),
    ],
)
def test_phone_numbers_become_e164(raw: str | None, expected: str | None) -> None:
    assert e164(raw) == expected


def test_phone_hash_is_sha256_of_e164() -> None:
    expected = hashlib.sha256(b"+819012345678").hexdigest()
    assert phone_hash("090 1234 5678") == expected
    assert phone_hash("nonsense") is None


def test_email_is_nfkc_trimmed_lowercased_and_hashed() -> None:
    email = normalise_email("  \uff28\uff41\uff4e\uff41\uff4b\uff4f.Yamada@Example.JP ")
    assert email is not None
    assert email.address == "hanako.yamada@example.jp"
    assert email.hash == hashlib.sha256(b"hanako.yamada@example.jp").hexdigest()
    assert not email.masked


@pytest.mark.parametrize(
    "raw",
    ["815db2ab3s1@pc.fw.rakuten.ne.jp", "ABC123xyz@marketplace.amazon.co.jp"],
)
def test_relay_addresses_are_kept_but_not_hashed(raw: str) -> None:
    email = normalise_email(raw)
    assert email is not None
    assert email.address == raw.lower()
    assert email.masked
    assert email.hash is None


def test_blank_and_malformed_emails() -> None:
    assert normalise_email("   ") is None
    malformed = normalise_email("not-an-address")
    assert malformed is not None
    assert malformed.hash is None
