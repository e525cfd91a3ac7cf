"""Churn signs and risk scores: current per customer, plus their history."""
