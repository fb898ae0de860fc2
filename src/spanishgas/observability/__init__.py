"""Ops observability as code: the Grafana dashboards (Prometheus and alert rules live in monitoring/)."""
