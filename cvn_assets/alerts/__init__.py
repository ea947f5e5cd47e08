"""Alerting: policy (notify on change, repeat, resolve), channels, runbook messages and failure sensors."""
