"""Customers: one person per shop, unified from their identities on each mall."""
