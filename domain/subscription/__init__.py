"""Subscriptions (定期購入) and what happened to them: skips, pauses, cancellations."""
