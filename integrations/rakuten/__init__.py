"""The Rakuten integration."""
