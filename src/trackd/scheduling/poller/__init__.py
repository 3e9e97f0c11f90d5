"""The poller: takes due polls, runs their source, stores what it saw (DESIGN §9).

    poller = Poller(bus, sessions, PollerOptions(consumer="worker-1"))
    await poller.run()              # until stop(); run(burst=True) ends once nothing is due

A worker learns of new polls from `poll-requests` on the bus (consumer group
`trackd-pollers`), and sweeps the database every `sweep_interval` for the rest: retries whose
backoff passed, blocked polls whose host may be asked again, polls whose worker died (their
lease expired) and requests the bus lost. The database decides who runs a poll (a claim under
a lease), so the bus only wakes workers up: a request is acknowledged once the claim is
committed, and a request for a poll someone else took is simply dropped.

While a poll runs, its lease is renewed every third of `lease_seconds`; a worker that cannot
renew it (another took the poll over) abandons the run without writing anything. On success
every snapshot is recorded (`trackd.snapshots.service.record_snapshot`: history, retention,
notifications) and the poll completed in one transaction, so a run is stored once or not at all.

The package's modules: `worker` (the loop: requests, sweeps, claims, slots), `running` (one
poll: fetch under a heartbeat, record its outcome), `transitions` (the task events of each
step) and `options`.
"""

from trackd.scheduling.poller.options import PollerOptions, PollerStats, stats_line
from trackd.scheduling.poller.worker import Poller

__all__ = ["Poller", "PollerOptions", "PollerStats", "stats_line"]
