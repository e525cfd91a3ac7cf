"""The CSV import (docs/import-format.md): streamed, validated, all or nothing, idempotent."""

from domain.importing.service import ImportReport, import_directory

__all__ = ["ImportReport", "import_directory"]
