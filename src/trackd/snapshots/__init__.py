"""Snapshot history: record what sources saw, find what changed, keep history bounded."""
