"""The diagnostics store: gate verdicts, crypto signals and global states, in SQL for Grafana (manual §14)."""
