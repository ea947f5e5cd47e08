"""The model registry (MLflow) as a Dagster resource."""

import dagster as dg
from pydantic import Field


class ModelRegistryResource(dg.ConfigurableResource):
    """Where gate evaluations are logged and challengers registered (MLflow tracking/registry URI)."""

    tracking_uri: str = Field(description="MLflow tracking and registry URI (sqlite:///… or http://mlflow:5000)")
