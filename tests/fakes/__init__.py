"""Fake servers of the malls' APIs and the machinery that serves them on loopback."""
