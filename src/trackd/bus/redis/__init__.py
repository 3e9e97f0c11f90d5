"""The Redis Streams bus: `bus` (publisher, `RedisStreamsBus`), `consumer` (a group member's
I/O), `merge` (the pure ordering of what it reads), `leases` (partition ownership), `layout`
(options and key names), `ordered` (entry ids in publish order) and `trim`."""

from __future__ import annotations

from trackd.bus.redis.bus import RedisStreamsBus
from trackd.bus.redis.layout import RedisStreamsOptions

__all__ = ["RedisStreamsBus", "RedisStreamsOptions"]
