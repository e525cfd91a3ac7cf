"""The outbox of messages to customers, their delivery events, and staff tasks."""
