"""XADD with ids from one clock per deployment, so ids order entries across streams.

A consumer merges a partition's topic streams by entry id. Ids Redis generates are per stream:
two streams written in the same millisecond number their entries independently (1000-7 in one,
1000-2 in the next, written after it), so merging by id could fold a task's state change
before the request that started it. Here every XADD of a deployment takes its id from one
counter under `{prefix}:clock`, inside a script Redis runs atomically: an entry written after
another, to whichever stream, has the greater id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

# KEYS[1] is the clock; KEYS[2..] the streams, one per entry. ARGV holds, per entry, its key
# ("" for none) then its body. Returns the last id issued.
_SCRIPT = """
local clock = KEYS[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ms, seq = now, -1
local last = redis.call('GET', clock)
if last then
  local sep = string.find(last, '-', 1, true)
  local last_ms = tonumber(string.sub(last, 1, sep - 1))
  if last_ms >= now then
    ms = last_ms
    seq = tonumber(string.sub(last, sep + 1))
  end
end
local function id()
  return string.format('%.0f-%.0f', ms, seq)
end
local function xadd(stream, key, body)
  if key == '' then
    return redis.pcall('XADD', stream, id(), 'body', body)
  end
  return redis.pcall('XADD', stream, id(), 'key', key, 'body', body)
end
for i = 2, #KEYS do
  seq = seq + 1
  local stream, key, body = KEYS[i], ARGV[2 * i - 3], ARGV[2 * i - 2]
  local reply = xadd(stream, key, body)
  if type(reply) == 'table' and reply.err then
    -- The stream holds a newer id than the clock: written before the clock existed, or by
    -- a clock set back. Move the clock past it and write again.
    local info = redis.call('XINFO', 'STREAM', stream)
    for j = 1, #info, 2 do
      if info[j] == 'last-generated-id' then
        local top = info[j + 1]
        local sep = string.find(top, '-', 1, true)
        ms = tonumber(string.sub(top, 1, sep - 1))
        seq = tonumber(string.sub(top, sep + 1)) + 1
      end
    end
    reply = xadd(stream, key, body)
    if type(reply) == 'table' and reply.err then
      return redis.error_reply(reply.err)
    end
  end
end
redis.call('SET', clock, id())
return id()
"""


class OrderedAppender:
    """Appends entries to streams with ids from the deployment's clock (see the module)."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._clock = f"{prefix}:clock"
        self._script = redis.register_script(_SCRIPT)

    async def xadd(self, entries: Sequence[tuple[str, str | None, bytes]]) -> str:
        """Append `(stream, key, body)` entries in order, atomically; returns the last id."""
        keys: list[Any] = [self._clock]
        args: list[Any] = []
        for stream, key, body in entries:
            keys.append(stream)
            args.extend((key or "", body))
        last: bytes | str = await self._script(keys=keys, args=args)
        return last.decode() if isinstance(last, bytes) else last
