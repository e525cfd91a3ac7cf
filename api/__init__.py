"""Kizuki's delivery layer: the Starlette app and the GraphQL schema."""
