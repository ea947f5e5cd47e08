"""How each step runs on Kubernetes: one pod per step (dagster-k8s ``k8s_job_executor``) with its own
resource requests and limits.

The manual's OOMKill history (§9.4: "si OOMKill récurrent : augmenter memory limits dans Helm
values", §17.5: training pods at 2–3 GiB) is why every step has an explicit memory request equal to
its limit: the scheduler only places a pod where that memory really is, and a pod is never killed
for using what it was promised. Raise a step's numbers here (or per op with
``step_resources_tags``) when Grafana shows it near its limit.

Configuration reaches the pods only through ``envFrom`` of one ConfigMap and Secrets (DESIGN.md:
production values never come from code); no literal environment variable is set here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_k8s import k8s_job_executor
from dagster_k8s.job import USER_DEFINED_K8S_CONFIG_KEY
from pydantic import BaseModel, ConfigDict, field_validator

# Object names shared with deploy/helm/values.yaml, deploy/k8s/*.yaml and docs/deploy.md.
CONFIG_MAP = "cvn-config"
S3_CREDENTIALS_SECRET = "cvn-s3-credentials"
APP_SECRET = "cvn-secrets"
ENV_CONFIG_MAPS: tuple[str, ...] = (CONFIG_MAP,)
ENV_SECRETS: tuple[str, ...] = (S3_CREDENTIALS_SECRET, APP_SECRET)
# The image runs as this unprivileged user (deploy/Dockerfile); pods refuse to start as root.
RUN_AS_USER = 10001

# Kubernetes resource quantities: "500m", "2", "1.5", "512Mi", "4Gi", "1e3"…
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?([eE][0-9]+|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")


class StepResources(BaseModel):
    """CPU and memory of one step's pod; limits default to the requests (guaranteed, never over-committed)."""

    model_config = ConfigDict(frozen=True)

    cpu: str
    memory: str
    cpu_limit: str | None = None
    memory_limit: str | None = None

    @field_validator("cpu", "memory", "cpu_limit", "memory_limit")
    @classmethod
    def _quantity(cls, value: str | None) -> str | None:
        if value is not None and not _QUANTITY.fullmatch(value):
            raise ValueError(f"{value!r} is not a Kubernetes quantity (expected e.g. '500m', '2', '512Mi', '4Gi')")
        return value

    def requirements(self) -> dict[str, dict[str, str]]:
        """The container's ``resources`` (V1ResourceRequirements, snake-case keys)."""
        return {
            "requests": {"cpu": self.cpu, "memory": self.memory},
            "limits": {"cpu": self.cpu_limit or self.cpu, "memory": self.memory_limit or self.memory},
        }


# Any step not listed below (registration, asset checks…): small, it only reads and writes metadata.
DEFAULT_STEP_RESOURCES = StepResources(cpu="250m", memory="512Mi", cpu_limit="1")

# Keyed by op name (for assets: the asset name). s43_predictions trains every (fold, family) model of
# one crypto and holds its candles in memory: the step the OOMKill history is about.
STEP_RESOURCES: Mapping[str, StepResources] = {
    "market_candles": StepResources(cpu="500m", memory="1Gi", cpu_limit="1"),
    "s43_predictions": StepResources(cpu="1", memory="4Gi", cpu_limit="2"),
    "s43_gate": StepResources(cpu="500m", memory="2Gi", cpu_limit="1"),
}


def _security_context() -> dict[str, Any]:
    return {
        "run_as_non_root": True,
        "run_as_user": RUN_AS_USER,
        "allow_privilege_escalation": False,
        "capabilities": {"drop": ["ALL"]},
    }


def _container_config(resources: StepResources) -> dict[str, Any]:
    return {"resources": resources.requirements()}


def step_resources_tags(cpu: str, memory: str, cpu_limit: str | None = None,
                        memory_limit: str | None = None) -> dict[str, str]:
    """Op tags giving one step its own pod resources, e.g. ``@dg.asset(op_tags=step_resources_tags("2", "8Gi"))``.

    Uses dagster-k8s's ``dagster-k8s/config`` tag. A step also listed in ``STEP_RESOURCES`` gets the
    executor's per-step value, which dagster-k8s applies after the tags.
    """
    resources = StepResources(cpu=cpu, memory=memory, cpu_limit=cpu_limit, memory_limit=memory_limit)
    return {USER_DEFINED_K8S_CONFIG_KEY: json.dumps({"container_config": _container_config(resources)})}


def k8s_executor_config(step_resources: Mapping[str, StepResources] | None = None,
                        default: StepResources = DEFAULT_STEP_RESOURCES,
                        max_concurrent: int | None = None) -> dict[str, Any]:
    """The ``k8s_job_executor`` config: env from the ConfigMap and Secrets, per-step resources, non-root pods."""
    per_step = STEP_RESOURCES if step_resources is None else step_resources
    config: dict[str, Any] = {
        "env_config_maps": list(ENV_CONFIG_MAPS),
        "env_secrets": list(ENV_SECRETS),
        "labels": {"app.kubernetes.io/part-of": "cvn-assets"},
        "step_k8s_config": {
            "container_config": {**_container_config(default), "security_context": _security_context()},
            "pod_spec_config": {"security_context": {"run_as_non_root": True, "run_as_user": RUN_AS_USER,
                                                     "seccomp_profile": {"type": "RuntimeDefault"}}},
        },
        "per_step_k8s_config": {op: {"container_config": _container_config(r)} for op, r in per_step.items()},
    }
    if max_concurrent is not None:
        config["max_concurrent"] = max_concurrent
    return config


def k8s_executor(step_resources: Mapping[str, StepResources] | None = None,
                 default: StepResources = DEFAULT_STEP_RESOURCES,
                 max_concurrent: int | None = None) -> dg.ExecutorDefinition:
    """``k8s_job_executor`` configured for cvn_assets: each step in its own pod, sized per step."""
    return k8s_job_executor.configured(
        k8s_executor_config(step_resources, default, max_concurrent), name="cvn_k8s_executor"
    )
