"""Tracking modules: self-contained features built on sources, schedules and snapshots."""
