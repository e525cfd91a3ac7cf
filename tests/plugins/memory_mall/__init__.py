"""A tiny store platform over an in-memory list of records: the plugin a partner would write.

Registered through a real `kizuki.integrations` entry point by `tests/plugins/test_plugin.py`,
and used by the sync, webhook and API tests as a mall whose pages, failures and webhooks the
test controls.
"""

from tests.plugins.memory_mall.platform import MemoryPlatform, create_platform

__all__ = ["MemoryPlatform", "create_platform"]
