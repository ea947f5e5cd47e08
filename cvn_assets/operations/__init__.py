"""Operations: what a platform owner runs around the product — S3 diagnosis (runbook scenario C),
the 7-day retention of the transport prefix (scenario D), and the Kubernetes execution settings.
"""
