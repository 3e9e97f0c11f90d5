"""Message buses behind one protocol, chosen by URL scheme (memory:// is the default)."""

from trackd.bus.base import Bus, Message, Subscription, from_url

__all__ = ["Bus", "Message", "Subscription", "from_url"]
