"""A seeded, realistic demo shop: generated records, the import files, a loaded shop."""

from domain.demo.files import DemoFileCounts, write_import_files
from domain.demo.generator import DemoBatch, generate_shop
from domain.demo.service import load_demo_shop

__all__ = [
    "DemoBatch",
    "DemoFileCounts",
    "generate_shop",
    "load_demo_shop",
    "write_import_files",
]
