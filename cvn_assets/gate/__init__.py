"""The gate: pools exactly the expected cohort of one campaign and gives a verdict."""
