"""The `cvn` command: the runbook's hands (the operator commands of README.md)."""
