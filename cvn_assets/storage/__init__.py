"""Storage: the object store (local directory or S3) and the s43 prediction IO manager."""
