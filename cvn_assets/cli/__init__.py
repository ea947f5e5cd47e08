"""The `cvn` command: the runbook's hands (DESIGN.md, operator commands)."""
