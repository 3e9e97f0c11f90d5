"""Stream length policy: drop only what every consumer group is done with.

An entry may go when, in every group on the stream, it is neither pending (delivered, not yet
acknowledged) nor undelivered. Per group the first entry still needed is the smallest pending
id, or, with nothing pending, the entry after `last-delivered-id`; the stream is trimmed with
`XTRIM MINID` to the smallest of those over all groups, so a drained stream ends up empty.

The script runs atomically, so no delivery or new group can slip between reading the groups
and trimming. A stream without groups is left alone: a group created later starts at its
beginning and must find every entry there.

There is deliberately no length cap: a cap would drop entries a lagging group has not read.
The stream grows while a group lags; size Redis's memory for the longest outage to ride out.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

_TRIM = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local function before(a, b)
    local ams, aseq = string.match(a, '^(%d+)-(%d+)$')
    local bms, bseq = string.match(b, '^(%d+)-(%d+)$')
    ams, aseq, bms, bseq = tonumber(ams), tonumber(aseq), tonumber(bms), tonumber(bseq)
    return ams < bms or (ams == bms and aseq < bseq)
end
local function after(id)
    local ms, seq = string.match(id, '^(%d+)-(%d+)$')
    return ms .. '-' .. string.format('%d', tonumber(seq) + 1)
end
local floor = nil
for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    local info = {}
    for i = 1, #group, 2 do info[group[i]] = group[i + 1] end
    local needed = after(info['last-delivered-id'])
    if tonumber(info['pending']) > 0 then
        needed = redis.call('XPENDING', KEYS[1], info['name'])[2]
    end
    if floor == nil or before(needed, floor) then floor = needed end
end
if floor == nil then return 0 end
return redis.call('XTRIM', KEYS[1], 'MINID', floor)
"""


class StreamTrimmer:
    """Trims streams to what their groups still need; returns how many entries went."""

    def __init__(self, redis: Redis) -> None:
        self._script = redis.register_script(_TRIM)

    async def trim(self, stream: str) -> int:
        removed = await self._script(keys=[stream])
        return int(removed)

    async def queue(self, pipe: Pipeline, stream: str) -> None:
        """Adds a trim of `stream` to a pipeline (its result is the count removed)."""
        await self._script(keys=[stream], client=pipe)
