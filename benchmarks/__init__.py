"""`make bench`: trackd's throughput, measured against the raw limit in the same run."""
