"""Segments: named, saved customer filters."""
