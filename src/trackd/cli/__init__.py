"""The `trackd` command."""
