"""Model operations (manual §10): backtesting, walk-forward, retrain, monitoring with drift, meta-training."""
