"""A shop's accounts on the malls, their sync runs and the webhook inbox."""
