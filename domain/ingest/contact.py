"""Normalised contact data and the hashes that identities are matched on.

Emails: NFKC, trimmed, lower-cased. Phones: E.164, read as Japanese numbers unless they carry
another country code. Relay addresses (Rakuten あんしんメルアド, Amazon's anonymised buyer email)
are not the person's address, so they get no hash and never link two identities.
"""

import hashlib
import re
import unicodedata
from dataclasses import dataclass

# Domains of addresses a mall hands out in place of the buyer's own.
RELAY_DOMAIN_SUFFIXES = ("fw.rakuten.ne.jp",)
RELAY_DOMAIN_MARKERS = ("marketplace.amazon.",)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE_NOISE = re.compile(r"[\s\-().]")


@dataclass(frozen=True, slots=True)
class Email:
    address: str
    masked: bool
    # SHA-256 hex of the address; None for relay addresses and malformed ones.
    hash: str | None


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def is_relay_address(address: str) -> bool:
    """Whether a normalised address belongs to a mall's relay or anonymising service."""
    domain = address.rpartition("@")[2]
    return domain.endswith(RELAY_DOMAIN_SUFFIXES) or any(
        domain.startswith(marker) or f".{marker}" in domain for marker in RELAY_DOMAIN_MARKERS
    )


def is_email(address: str) -> bool:
    return _EMAIL.match(address) is not None


def normalise_email(raw: str | None) -> Email | None:
    """The stored form of an email: None when blank; no hash when relayed or malformed."""
    if raw is None:
        return None
    address = unicodedata.normalize("NFKC", raw).strip().lower()
    if not address:
        return None
    masked = is_relay_address(address)
    hashed = None if masked or not is_email(address) else sha256_hex(address)
    return Email(address=address, masked=masked, hash=hashed)


def e164(raw: str | None) -> str | None:
    """A phone number as E.164 (`+819012345678`); domestic numbers are read as Japanese.

    None when blank or not a plausible number.
    """
    if raw is None:
        return None
    text = _PHONE_NOISE.sub("", unicodedata.normalize("NFKC", raw).strip())
    if not text:
        return None
    international = text.startswith("+")
    digits = text[1:] if international else text
    if not digits.isdigit():
        return None
    if international or (digits.startswith("81") and not digits.startswith("0")):
        if not digits.startswith("81"):
            return f"+{digits}" if 8 <= len(digits) <= 15 else None
        # `+81 090…` is a common misspelling of `+81 90…`.
        national = digits[2:].removeprefix("0")
    elif digits.startswith("0"):
        national = digits[1:]
    else:
        return None
    # After the trunk 0, mobile (070/080/090), IP (050) and 0800 numbers have 10 digits,
    # landlines and 0120 have 9.
    long_form = national.startswith(("50", "70", "80", "90", "800"))
    if len(national) != (10 if long_form else 9) or national.startswith("0"):
        return None
    return f"+81{national}"


def phone_hash(phone: str | None) -> str | None:
    """SHA-256 hex of the E.164 form; None when the number cannot be normalised."""
    normalised = e164(phone)
    return None if normalised is None else sha256_hex(normalised)
