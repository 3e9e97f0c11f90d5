"""An example application with two domain tracking tables (trackd.jobs): ETF price updates
and contribution processing, the task-monitoring seed's own examples."""
