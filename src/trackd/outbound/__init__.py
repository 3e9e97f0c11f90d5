"""Outbound HTTP: the one place trackd builds clients that reach other hosts.

Sources fetch and notification channels deliver through `outbound_client` (`http.py`),
whose transport refuses private, loopback, link-local and metadata addresses
(`addresses.py`), pins the checked address, rate-limits per host and caps responses.
"""
