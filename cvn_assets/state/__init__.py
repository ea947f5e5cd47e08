"""Operating state: the golden signals (manual §2), the global state (§0) and the morning check (§6.1)."""
