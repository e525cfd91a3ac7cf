"""A fake Rakuten RMS (RakutenPay Order API) for integration tests, with a test-driven clock."""
