"""`MemoryPlatform`: pages over a list of canonical records, HMAC-signed JSON webhooks."""

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import httpx

from domain.platforms import (
    AccountInfo,
    CustomerRecord,
    OrderRecord,
    PageStats,
    PlatformAccount,
    PlatformAuthRevoked,
    PlatformRejected,
    PlatformUnavailable,
    PrivacyAction,
    PrivacyRequest,
    RecordBatch,
    RejectedRecord,
    SubscriptionRecord,
    SyncCursor,
    SyncPage,
    WebhookEvent,
)

NAME = "memory"
SIGNATURE_HEADER = "x-memory-signature"
Record = CustomerRecord | OrderRecord | SubscriptionRecord


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def batch_of(records: Sequence[Record]) -> RecordBatch:
    return RecordBatch(
        customers=tuple(r for r in records if isinstance(r, CustomerRecord)),
        orders=tuple(r for r in records if isinstance(r, OrderRecord)),
        subscriptions=tuple(r for r in records if isinstance(r, SubscriptionRecord)),
    )


@dataclass
class MemoryPlatform:
    """A mall whose whole history is `records`; accounts are `tokens` → account id."""

    records: list[Record] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)
    page_size: int = 3
    # Raised once, instead of yielding the page of this index (0-based) of the next sync.
    fail_at_page: int | None = None
    failure: BaseException = field(default_factory=lambda: RuntimeError("mall crashed"))
    # Vendor records the mapping "could not read", reported with the page of this index.
    rejected_on_page: dict[int, tuple[RejectedRecord, ...]] = field(default_factory=dict)
    unavailable: bool = False
    # Syncs that fail as unavailable before the mall answers again, and the wait it asks for.
    outages: int = 0
    retry_after: float = 3.0
    checks: int = 0
    # Set to pause each page until released (to observe a running sync).
    gate: asyncio.Event | None = None
    name: str = NAME
    # The credential that names the account (a built-in mall's token key, when standing in).
    token_key: str = "token"
    # What `verify_webhook` reads: kept when the connection is disconnected.
    webhook_credential_keys: frozenset[str] = frozenset({"secret"})

    async def check_account(
        self, credentials: Mapping[str, str], base_url: str | None
    ) -> AccountInfo:
        self.checks += 1
        if self.unavailable:
            raise PlatformUnavailable("memory mall is down", platform=self.name, retry_after=1)
        account = self.tokens.get(credentials.get(self.token_key, ""))
        if account is None:
            raise PlatformAuthRevoked("unknown token", platform=self.name)
        return AccountInfo(external_account_id=account, name=f"Memory {account}")

    async def sync_pages(
        self, account: PlatformAccount, cursor: SyncCursor, since: datetime | None
    ) -> AsyncIterator[SyncPage]:
        token = account.credentials.get(self.token_key, "")
        if self.tokens.get(token) != account.external_account_id:
            raise PlatformAuthRevoked("token revoked", platform=self.name)
        if self.unavailable or self.outages:
            self.outages = max(self.outages - 1, 0)
            raise PlatformUnavailable(
                "memory mall is down", platform=self.name, retry_after=self.retry_after
            )
        start = 0 if since is not None else int(cursor.get("position", "0"))
        index = 0
        while start < len(self.records):
            if self.fail_at_page == index:
                self.fail_at_page = None
                raise self.failure
            if self.gate is not None:
                await self.gate.wait()
            end = min(start + self.page_size, len(self.records))
            yield SyncPage(
                records=batch_of(self.records[start:end]),
                cursor={"position": str(end)},
                rejected=self.rejected_on_page.get(index, ()),
                stats=PageStats(requests=1, throttle_waits=index % 2, throttle_wait_seconds=0.25),
            )
            start, index = end, index + 1

    def verify_webhook(
        self, account: PlatformAccount, headers: Mapping[str, str], body: bytes
    ) -> bool:
        secret = account.credentials.get("secret", "")
        given = headers.get(SIGNATURE_HEADER, "")
        return bool(secret) and hmac.compare_digest(sign(secret, body), given)

    def parse_webhook(
        self, account: PlatformAccount, headers: Mapping[str, str], body: bytes
    ) -> WebhookEvent:
        try:
            data = json.loads(body)
            privacy = data.get("privacy")
            return WebhookEvent(
                event_id=str(data["id"]),
                topic=str(data["topic"]),
                records=batch_of(
                    [
                        *map(_customer, data.get("customers", [])),
                        *map(_order, data.get("orders", [])),
                    ]
                ),
                privacy=_privacy(privacy) if privacy else None,
                resync=bool(data.get("resync", False)),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise PlatformRejected(f"unreadable webhook: {error}", platform=self.name) from error


def _customer(data: Mapping[str, str]) -> CustomerRecord:
    return CustomerRecord(
        platform=NAME,
        external_id=data["id"],
        display_name=data.get("name", ""),
        email=data.get("email"),
        source_updated_at=datetime.fromisoformat(data["updated_at"]),
    )


def _order(data: Mapping[str, str]) -> OrderRecord:
    return OrderRecord(
        platform=NAME,
        external_id=data["id"],
        customer_external_id=data["customer"],
        ordered_at=datetime.fromisoformat(data["ordered_at"]),
        total_amount=int(data["total"]),
        source_updated_at=datetime.fromisoformat(data["updated_at"]),
    )


def _privacy(data: Mapping[str, object]) -> PrivacyRequest:
    customers = data.get("customers", [])
    assert isinstance(customers, list)
    return PrivacyRequest(
        action=PrivacyAction(str(data["action"])),
        customer_external_ids=tuple(str(c) for c in customers),
        request_id=str(data.get("request_id", "")) or None,
    )


def create_platform(http: httpx.AsyncClient) -> MemoryPlatform:
    """The entry point's factory; the in-memory mall needs no HTTP client."""
    return MemoryPlatform()
