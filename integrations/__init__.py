"""Mall integrations, one package per mall.

Each registers through the `kizuki.integrations` entry-point group, as a partner plugin would.
"""
