"""Operators' view: Prometheus metrics and the rolling numbers behind the live dashboard."""
