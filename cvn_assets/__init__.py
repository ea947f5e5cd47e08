"""cvn_assets: CVNTrade s43 campaigns and operating supervision on Dagster."""

import os

# Nothing of ours calls out at run time: MLflow 3 would otherwise start a usage-telemetry client
# when it is first imported (Dagster's is off in dagster.yaml). An explicit value set by the user
# wins; this only sets the default, before any module of ours imports mlflow.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
