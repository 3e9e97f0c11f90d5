"""Task reads: what `/v1/tracker` (plans, tasks, timelines, traces, agent metrics), the
dashboard and `trackd plans` show of the records ingest folded, each with its `as_of`.
The entry is `trackd.reads.service`."""
