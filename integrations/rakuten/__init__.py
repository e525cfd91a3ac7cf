"""Rakuten Ichiba through the RMS RakutenPay Order API: sweeps of orders by order date,
re-scanned over a trailing window because Rakuten cannot list what changed."""
