"""The Amazon integration."""
