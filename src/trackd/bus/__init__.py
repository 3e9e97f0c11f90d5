"""Message buses behind one protocol, chosen by URL scheme (memory:// is the default)."""

from trackd.bus.base import Bus, Message, Subscription
from trackd.bus.urls import from_url, in_process

__all__ = ["Bus", "Message", "Subscription", "from_url", "in_process"]
