"""Campaigns: registration, the launch job, the sensor that drives them, and the CLI's runner."""
