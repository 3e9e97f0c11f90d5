"""Notifications: a durable outbox delivered to channels (webhook, Discord, apprise)."""
