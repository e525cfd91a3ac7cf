"""Kizuki's domain: the data model, business rules and the protocols the edges implement.

Free of transport concerns: no HTTP, GraphQL or queue library is imported here.
"""
