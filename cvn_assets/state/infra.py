"""``infra_health`` (manual §2, §9.4): the machine, or our pods in a cluster.

On one machine: how full the volumes of the object store and of the Dagster instance are, memory
in use and load per core. In a cluster (``KUBERNETES_SERVICE_HOST`` set): the same volumes as
mounted in this pod, plus our pods read from the Kubernetes API — OOMKilled containers, restarts,
and pods down (crash-looping, failed, not ready, or Pending longer than the limit).

The pod evaluation is a pure function over ``kubernetes.client.V1Pod`` objects; only
``read_pods`` talks to the API server.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from cvn_assets.state.settings import StateSettings
from cvn_assets.state.signals import InfraHealth, Measure

NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
DEFAULT_POD_SELECTOR = "app.kubernetes.io/part-of=dagster"
WORKER_COMPONENTS = ("run_worker", "step_worker")


@dataclass(frozen=True)
class InfraProbe:
    """What to look at: labelled volumes, and the cluster when running in one."""

    volumes: Mapping[str, str] = field(default_factory=dict)
    kubernetes: bool = False
    namespace: str | None = None
    pod_selector: str = DEFAULT_POD_SELECTOR

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> InfraProbe:
        """Volumes of CVN_STORAGE_ROOT (local object store) and DAGSTER_HOME; the cluster if in one."""
        volumes: dict[str, str] = {}
        if environ.get("CVN_STORAGE_ROOT") and not environ.get("CVN_S3_BUCKET"):
            volumes["object store"] = environ["CVN_STORAGE_ROOT"]
        if environ.get("DAGSTER_HOME"):
            volumes["dagster instance"] = environ["DAGSTER_HOME"]
        in_cluster = bool(environ.get("KUBERNETES_SERVICE_HOST"))
        namespace = environ.get("CVN_K8S_NAMESPACE")
        if in_cluster and not namespace and NAMESPACE_FILE.exists():
            namespace = NAMESPACE_FILE.read_text().strip()
        return cls(volumes=volumes, kubernetes=in_cluster, namespace=namespace,
                   pod_selector=environ.get("CVN_K8S_POD_SELECTOR") or DEFAULT_POD_SELECTOR)


def _existing(path: Path) -> Path | None:
    """The path, or its nearest existing parent: the volume it will be written on."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return None


def disk_percent(path: str) -> Measure:
    target = _existing(Path(path).expanduser())
    if target is None:
        return Measure.missing(f"{path}: no existing parent directory")
    try:
        usage = shutil.disk_usage(target)
    except OSError as exc:
        return Measure.missing(f"{path}: {exc.strerror or exc}")
    if usage.total <= 0:
        return Measure.missing(f"{path}: volume reports a total size of 0")
    free_gib = usage.free / 2**30
    return Measure.of(100.0 * (usage.total - usage.free) / usage.total, f"{target}: {free_gib:.1f} GiB free")


def memory_percent(meminfo: Path = Path("/proc/meminfo")) -> Measure:
    try:
        text = meminfo.read_text()
    except OSError as exc:
        return Measure.missing(f"{meminfo}: {exc.strerror or exc} (memory is read from /proc on Linux)")
    fields = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            fields[name.strip()] = int(parts[0])
    total, available = fields.get("MemTotal"), fields.get("MemAvailable")
    if not total or available is None:
        return Measure.missing(f"{meminfo}: MemTotal / MemAvailable not found")
    return Measure.of(100.0 * (total - available) / total, f"{available / 2**20:.1f} GiB available")


def cpu_percent() -> Measure:
    """Load average (1 min) per core, as a percentage: the CPU saturation of one machine."""
    try:
        load = os.getloadavg()[0]
    except OSError as exc:
        return Measure.missing(f"load average unavailable: {exc}")
    cores = os.cpu_count() or 1
    return Measure.of(100.0 * load / cores, f"load {load:.2f} on {cores} core(s)")


def _terminated_at(state) -> datetime | None:
    terminated = getattr(state, "terminated", None) if state is not None else None
    return getattr(terminated, "finished_at", None) if terminated is not None else None


def _oom(state) -> bool:
    terminated = getattr(state, "terminated", None) if state is not None else None
    return terminated is not None and getattr(terminated, "reason", None) == "OOMKilled"


def pod_health(pods: Sequence, now: datetime, settings: StateSettings) -> dict[str, Measure]:
    """OOM kills, restarts and pods down among ``pods`` (kubernetes ``V1Pod`` objects)."""
    window_start = now - timedelta(hours=settings.oom_window_hours)
    pending_limit = timedelta(minutes=settings.pending_pod_minutes)
    oom, restarts = 0, 0
    oom_pods: list[str] = []
    down: dict[str, str] = {}  # pod → first reason it is down
    for pod in pods:
        name = pod.metadata.name
        labels = pod.metadata.labels or {}
        worker = labels.get("app.kubernetes.io/component") in WORKER_COMPONENTS
        phase = pod.status.phase if pod.status else None
        statuses = (pod.status.container_statuses or []) if pod.status else []
        for status in statuses:
            restarts += status.restart_count or 0
            for state in (status.state, status.last_state):
                finished = _terminated_at(state)
                if _oom(state) and (finished is None or finished >= window_start):
                    oom += max(1, status.restart_count or 0) if state is status.last_state else 1
                    oom_pods.append(f"{name}/{status.name}")
                    break
            waiting = status.state.waiting if status.state else None
            if waiting is not None and waiting.reason in ("CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull",
                                                          "CreateContainerConfigError"):
                down.setdefault(name, waiting.reason)
        created = pod.metadata.creation_timestamp
        if phase == "Pending" and created is not None and now - created > pending_limit:
            down.setdefault(name, f"Pending {int((now - created).total_seconds() // 60)} min")
        elif phase == "Failed" and not worker:
            down.setdefault(name, "Failed")
        elif phase == "Running" and not worker and statuses and not all(s.ready for s in statuses):
            started = pod.status.start_time or created
            if started is not None and now - started > pending_limit:
                down.setdefault(name, "not ready")
    unique_down = [f"{name} ({reason})" for name, reason in sorted(down.items())]
    return {
        "oom_kills": Measure.of(oom, ", ".join(sorted(set(oom_pods))) or "none"),
        "restarts": Measure.of(restarts, f"over {len(pods)} pod(s)"),
        "pods_down": Measure.of(len(unique_down), ", ".join(unique_down) or f"all {len(pods)} pod(s) up"),
    }


def read_pods(namespace: str, selector: str) -> list:
    """Our pods, from the API server with the pod's service account."""
    from kubernetes import client, config

    config.load_incluster_config()
    return list(client.CoreV1Api().list_namespaced_pod(namespace, label_selector=selector, _request_timeout=10).items)


def infra_health(probe: InfraProbe, settings: StateSettings, now: datetime) -> InfraHealth:
    disks = {label: disk_percent(path) for label, path in sorted(probe.volumes.items())}
    if not probe.kubernetes:
        return InfraHealth(mode="local", disks=disks, memory_percent=memory_percent(), cpu_percent=cpu_percent())
    if not probe.namespace:
        reason = "in a cluster but the namespace is unknown (set CVN_K8S_NAMESPACE)"
        pods = {name: Measure.missing(reason) for name in ("oom_kills", "restarts", "pods_down")}
    else:
        try:
            pods = pod_health(read_pods(probe.namespace, probe.pod_selector), now, settings)
        except Exception as exc:
            # The client raises its own and urllib3's errors (not a declared dependency of ours):
            # those make the pods unknown; anything else is a bug and propagates.
            if not isinstance(exc, OSError) and not type(exc).__module__.startswith(("kubernetes", "urllib3")):
                raise
            reason = f"Kubernetes API (namespace {probe.namespace}, selector {probe.pod_selector}): " \
                     f"{type(exc).__name__}: {getattr(exc, 'reason', None) or exc}"
            pods = {name: Measure.missing(reason) for name in ("oom_kills", "restarts", "pods_down")}
    return InfraHealth(mode="kubernetes", disks=disks, memory_percent=memory_percent(), **pods)
