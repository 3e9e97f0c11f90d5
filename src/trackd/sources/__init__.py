"""Sources: adapters that turn a target (a URL or parameters) into typed snapshots."""
