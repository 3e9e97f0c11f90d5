"""Ingest: consume events from the bus, fold them, write each batch in one transaction."""
