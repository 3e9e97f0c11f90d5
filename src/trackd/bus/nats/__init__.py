"""The NATS bus, compatible with the agent platform (soorma).

Modules: `options` (the URL), `connection`, `streams` (JetStream stream management),
`publisher`, `subscription` with its `buffer` and `puller`, and `bus` (`NatsBus`).

The platform publishes each event with plain NATS core on `soorma.events.{topic}` and its
tracker subscribes with the queue group `tracker-service`; trackd does the same, so it can
take the tracker's place. Each topic is delivered in one of two modes, chosen by the server:

* **JetStream**, when a stream covers the topic's subject (the platform's core publishes are
  stored by such a stream too). `publish` returns once the stream has acknowledged every
  message, so they are durable. A subscription is a durable pull consumer with explicit acks:
  delivery is at least once. A message fetched and not acknowledged comes back: after `nack`
  to the same subscription, ahead of later ones; after `close` to any member of the group; and
  `ack_wait` seconds after it was pulled when its consumer dies (or takes longer than that to
  acknowledge it, which delivers it twice: harmless, as ingest ignores an event id it has).
  Pull requests never wait on the server (see `puller`); an idle subscription asks again
  at most every 0.2 s, so that is the latency a message sees once ingest has caught up.
* **NATS core** otherwise. Delivery is at most once: `publish` returns once the server has
  received the messages, not stored them; a message published while no member of the queue
  group is subscribed is lost; one that reaches a consumer which falls too far behind is
  dropped (slow consumer, logged); there is no acknowledgement, so `ack` does nothing,
  `nack` only hands messages back to the same subscription, and what a subscription holds
  when it closes or its process dies is lost.

Create a stream (`?create_stream=true`, or with the `nats` CLI) for durability. At start, each
subscription logs the mode each of its topics runs in (core NATS as a warning). Delivery in a
queue group or a shared pull consumer is spread over its members, so the order of one task's
events across consumers is not kept; ingest's fold does not depend on arrival order.

URL: `nats://host:4222?prefix=soorma.events&queue=tracker-service&stream=SOORMA_EVENTS&
create_stream=true&ack_wait=30&buffer=1000`. `queue` names, on NATS, the group the caller passes
as `platform_group` (trackd's ingest): its queue group, and the durable consumers
`{queue}-{topic}`; other groups keep their names. `stream` names a stream that must exist, or
is created over `{prefix}.>` with `create_stream`; `create_stream=true` without `stream=`
creates the default stream, the prefix in capitals with `_` for `.` (`SOORMA_EVENTS`).
`buffer` bounds what a subscription holds that was not fetched yet.
"""

from __future__ import annotations

from trackd.bus.nats.bus import NatsBus
from trackd.bus.nats.messages import KEY_HEADER
from trackd.bus.nats.options import (
    DEFAULT_PREFIX,
    DEFAULT_QUEUE,
    NatsOptions,
    default_stream_name,
)
from trackd.bus.nats.subscription import NatsSubscription

__all__ = [
    "DEFAULT_PREFIX",
    "DEFAULT_QUEUE",
    "KEY_HEADER",
    "NatsBus",
    "NatsOptions",
    "NatsSubscription",
    "default_stream_name",
]
