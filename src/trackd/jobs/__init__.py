"""Job tracking for applications: trackd's own job API and integrations such as Celery."""
