"""Persisting canonical records: one idempotent, set-based upsert path for every source."""

from domain.ingest.context import Counts
from domain.ingest.service import (
    IMPORT_ACCOUNT_ID,
    IngestResult,
    get_or_create_import_connection,
    ingest_batch,
)

__all__ = [
    "IMPORT_ACCOUNT_ID",
    "Counts",
    "IngestResult",
    "get_or_create_import_connection",
    "ingest_batch",
]
