"""Campaigns (scenarios): triggers, steps and the customers enrolled in them."""
