"""deploy/: the step pods dagster-k8s builds, the Helm values, the Kubernetes objects and the image.

* The Kubernetes Job of a step is built with dagster-k8s's own job-construction API from our
  executor config (and the run launcher of deploy/k8s/dagster-instance.yaml), serialised to the
  API's JSON and deserialised into the ``kubernetes`` package's ``V1Job`` model.
* The Helm values are checked key by key against the official chart's documented keys (recorded
  below from the chart's ``values.schema.json`` and instance templates).
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster._config import process_config, resolve_to_config_type
from dagster_k8s import k8s_job_executor
from dagster_k8s.container_context import K8sContainerContext
from dagster_k8s.job import (
    DagsterK8sJobConfig,
    UserDefinedDagsterK8sConfig,
    construct_dagster_k8s_job,
    get_user_defined_k8s_config,
)
from kubernetes.client import ApiClient, V1ConfigMap, V1Job, V1Secret
from kubernetes.utils import parse_quantity
from pydantic import ValidationError

from cvn_assets.operations.k8s import (
    DEFAULT_STEP_RESOURCES,
    ENV_CONFIG_MAPS,
    ENV_SECRETS,
    RUN_AS_USER,
    STEP_RESOURCES,
    k8s_executor,
    k8s_executor_config,
    step_resources_tags,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
DEPLOY = REPO_ROOT / "deploy"
VALUES = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
INSTANCE = yaml.safe_load((DEPLOY / "k8s" / "dagster-instance.yaml").read_text())
IMAGE = "registry.example.com/cvntrade/cvn-assets:0.1.0"


class _Body:
    """What ``ApiClient.deserialize`` reads: the JSON body of an API response."""

    def __init__(self, payload: Any):
        self.data = json.dumps(payload)


def to_model(payload: Any, model: str) -> Any:
    """Deserialise API-shaped JSON into a ``kubernetes.client`` model (client-side validation on).

    The model is serialised back and must equal the input: a field Kubernetes does not know (which
    deserialisation alone would silently drop) fails the check.
    """
    api = ApiClient()
    obj = api.deserialize(_Body(payload), model)
    assert api.sanitize_for_serialization(obj) == payload, f"{model}: unknown or malformed fields in {payload}"
    return obj


def executor_settings() -> dict[str, Any]:
    """Our executor config, resolved by the k8s_job_executor's own config schema (defaults filled in)."""
    schema = resolve_to_config_type(k8s_job_executor.config_schema.config_type)
    result = process_config(schema, k8s_executor_config())
    assert result.success, result.errors
    return result.value


def step_job(op_name: str, op_tags: dict[str, str] | None = None) -> V1Job:
    """The Job K8sStepHandler launches for one step, assembled with dagster-k8s's API in its merge order:
    run launcher → executor (step_k8s_config) → op tags → executor per_step_k8s_config."""
    cfg = executor_settings()
    launcher = INSTANCE["run_launcher"]["config"]
    from_launcher = K8sContainerContext(
        image_pull_policy=launcher["image_pull_policy"], service_account_name=launcher["service_account_name"],
        env_config_maps=launcher["env_config_maps"], env_secrets=launcher["env_secrets"],
        namespace=launcher["job_namespace"], run_k8s_config=UserDefinedDagsterK8sConfig.from_dict(launcher["run_k8s_config"]),
    )
    from_executor = K8sContainerContext(
        env_config_maps=cfg.get("env_config_maps"), env_secrets=cfg.get("env_secrets"), env_vars=cfg.get("env_vars"),
        labels=cfg.get("labels"), resources=cfg.get("resources"),
        run_k8s_config=UserDefinedDagsterK8sConfig.from_dict(cfg.get("step_k8s_config", {})),
    )
    context = (
        from_launcher.merge(from_executor)
        .merge(K8sContainerContext(run_k8s_config=get_user_defined_k8s_config(op_tags or {})))
        .merge(K8sContainerContext(run_k8s_config=UserDefinedDagsterK8sConfig.from_dict(
            cfg["per_step_k8s_config"].get(op_name, {}))))
    )
    job_config = DagsterK8sJobConfig(
        job_image=IMAGE, dagster_home=launcher["dagster_home"], instance_config_map=launcher["instance_config_map"],
        postgres_password_secret=launcher["postgres_password_secret"],
    )
    job = construct_dagster_k8s_job(
        job_config=job_config, args=["dagster", "api", "execute_step"], job_name=f"dagster-step-{op_name.replace('_', '-')}",
        component="step_worker", user_defined_k8s_config=context.run_k8s_config,
        labels={"dagster/job": "s43_acquire_job", "dagster/op": op_name},
        env_vars=[{"name": "DAGSTER_RUN_JOB_NAME", "value": "s43_acquire_job"},
                  {"name": "DAGSTER_RUN_STEP_KEY", "value": op_name}],
    )
    return to_model(ApiClient().sanitize_for_serialization(job), "V1Job")


# ---------------------------------------------------------------------------------------------
# step pods (k8s_job_executor)


@pytest.mark.parametrize("op_name", sorted(STEP_RESOURCES))
def test_each_acquisition_step_pod_gets_its_own_requests_and_limits(op_name):
    job = step_job(op_name)
    assert isinstance(job, V1Job) and job.kind == "Job"
    [container] = job.spec.template.spec.containers
    expected = STEP_RESOURCES[op_name].requirements()
    assert container.resources.requests == expected["requests"]
    assert container.resources.limits == expected["limits"]
    # memory is guaranteed (request = limit): the OOMKill history of manual §9.4
    assert parse_quantity(container.resources.requests["memory"]) == parse_quantity(container.resources.limits["memory"])
    assert container.image == IMAGE


def test_the_training_step_is_the_largest():
    memory = {op: parse_quantity(r.memory) for op, r in STEP_RESOURCES.items()}
    assert max(memory, key=memory.get) == "s43_predictions"
    assert memory["s43_predictions"] >= parse_quantity("3Gi")  # §17.5: training pods measured at 2–3 GiB


def test_any_other_step_gets_the_default_resources():
    [container] = step_job("register_campaign").spec.template.spec.containers
    assert container.resources.requests == DEFAULT_STEP_RESOURCES.requirements()["requests"]
    assert container.resources.limits == DEFAULT_STEP_RESOURCES.requirements()["limits"]


def test_op_tags_size_a_step_the_executor_does_not_list():
    tags = step_resources_tags("2", "8Gi", cpu_limit="4")
    [container] = step_job("backfill_candles", tags).spec.template.spec.containers
    assert container.resources.requests == {"cpu": "2", "memory": "8Gi"}
    assert container.resources.limits == {"cpu": "4", "memory": "8Gi"}


def test_step_pods_take_configuration_only_from_config_maps_and_secrets():
    [container] = step_job("s43_predictions").spec.template.spec.containers
    config_maps = [e.config_map_ref.name for e in container.env_from if e.config_map_ref]
    secrets = [e.secret_ref.name for e in container.env_from if e.secret_ref]
    assert config_maps == list(ENV_CONFIG_MAPS)
    assert secrets == list(ENV_SECRETS)
    for variable in container.env:
        # Dagster's own bookkeeping variables only; the database password comes from its Secret
        assert variable.name.startswith("DAGSTER_"), variable.name
        if variable.name == "DAGSTER_PG_PASSWORD":
            assert variable.value is None
            assert variable.value_from.secret_key_ref.name == "dagster-postgresql-secret"


def test_step_pods_run_as_the_unprivileged_image_user():
    job = step_job("s43_gate")
    [container] = job.spec.template.spec.containers
    assert container.security_context.run_as_non_root is True
    assert container.security_context.run_as_user == RUN_AS_USER
    assert container.security_context.allow_privilege_escalation is False
    assert job.spec.template.spec.security_context.run_as_non_root is True
    assert job.spec.template.spec.restart_policy == "Never"


def test_the_executor_is_dagster_k8s_configured_with_our_settings():
    executor = k8s_executor()
    assert executor.name == "cvn_k8s_executor"
    assert set(executor_settings()["per_step_k8s_config"]) == set(STEP_RESOURCES)


def test_a_resource_quantity_that_kubernetes_would_reject_is_refused_at_definition():
    with pytest.raises(ValidationError, match="not a Kubernetes quantity"):
        step_resources_tags("2 cores", "8Gi")


def test_definitions_select_the_k8s_executor_by_environment(tmp_path):
    from cvn_assets.definitions import build_defs

    from cvn_assets.models.jobs import MODEL_JOBS

    defs = build_defs({"CVN_EXECUTOR": "k8s", "CVN_STORAGE_ROOT": str(tmp_path), "DAGSTER_HOME": str(tmp_path)})
    executors = {job.name: job.executor_def.name for job in defs.resolve_all_job_defs()}
    # the registry lifecycle's jobs are one short step each: it runs in the run's own pod
    assert {executors.pop(name) for name in MODEL_JOBS} == {"in_process"}
    assert set(executors.values()) == {"cvn_k8s_executor"}, executors


# ---------------------------------------------------------------------------------------------
# Helm values for the official chart
#
# Documented keys, recorded from dagster-io/dagster helm/dagster/values.schema.json
# (commit bdb8547fab497826eeec292bc160b549a0a329ef, Dagster 1.x chart with "dagsterWebserver",
# "dagster-user-deployments" and "codeServerArgs") and from the instance templates that read the
# free-form objects (templates/configmap-instance.yaml, commit 835892b4; helpers/instance/
# _run-launcher.tpl a07d616f; _compute-log-manager.tpl 84842bc4; _postgresql.tpl 3f2daa0d).
# "*" stands for the items of a list.

_K8S = ("env", "envConfigMaps", "envSecrets", "deploymentLabels", "labels", "nodeSelector", "affinity", "tolerations",
        "podSecurityContext", "securityContext", "resources", "readinessProbe", "livenessProbe", "startupProbe",
        "annotations", "volumeMounts", "volumes", "schedulerName")
CHART_KEYS: dict[tuple[str, ...], set[str]] = {
    (): {"dagsterWebserver", "dagster-user-deployments", "postgresql", "generatePostgresqlPasswordSecret",
         "generateCeleryConfigSecret", "rabbitmq", "redis", "flower", "ingress", "imagePullSecrets",
         "computeLogManager", "scheduler", "runLauncher", "pythonLogs", "dagsterDaemon", "busybox", "migrate",
         "telemetry", "serviceAccount", "global", "retention", "additionalInstanceConfig"},
    ("global",): {"postgresqlSecretName", "dagsterHome", "serviceAccountName", "celeryConfigSecretName"},
    ("postgresql",): {"image", "enabled", "postgresqlHost", "postgresqlUsername", "postgresqlPassword",
                      "postgresqlDatabase", "postgresqlParams", "postgresqlScheme", "service"},
    ("postgresql", "service"): {"port"},
    ("dagsterWebserver",): {"replicaCount", "image", "nameOverride", "pathPrefix", "service", "workspace",
                            "enableReadOnly", "dbStatementTimeout", "dbPoolRecycle", "logLevel",
                            "initContainerResources", *_K8S},
    ("dagster-user-deployments",): {"enabled", "enableSubchart", "imagePullSecrets", "deployments"},
    ("dagster-user-deployments", "deployments", "*"): {
        "name", "image", "dagsterApiGrpcArgs", "codeServerArgs", "includeConfigInLaunchedRuns",
        "deploymentNamespace", "port", "initContainers", "sidecarContainers", *_K8S},
    ("dagster-user-deployments", "deployments", "*", "image"): {"repository", "tag", "pullPolicy"},
    ("dagster-user-deployments", "deployments", "*", "includeConfigInLaunchedRuns"): {"enabled"},
    ("runLauncher",): {"type", "config"},
    ("runLauncher", "config"): {"celeryK8sRunLauncher", "k8sRunLauncher", "customRunLauncher"},
    ("runLauncher", "config", "k8sRunLauncher"): {
        "image", "imagePullPolicy", "jobNamespace", "loadInclusterConfig", "kubeconfigFile", "envConfigMaps",
        "envSecrets", "envVars", "volumeMounts", "volumes", "labels", "failPodOnRunFailure", "resources",
        "schedulerName", "securityContext", "runK8sConfig"},
    ("runLauncher", "config", "k8sRunLauncher", "runK8sConfig"): {
        "containerConfig", "podSpecConfig", "podTemplateSpecMetadata", "jobSpecConfig", "jobMetadata"},
    ("computeLogManager",): {"type", "config"},
    ("computeLogManager", "config"): {"azureBlobComputeLogManager", "gcsComputeLogManager", "s3ComputeLogManager",
                                      "customComputeLogManager"},
    ("computeLogManager", "config", "s3ComputeLogManager"): {
        "bucket", "localDir", "prefix", "useSsl", "verify", "verifyCertPath", "endpointUrl", "skipEmptyFiles",
        "uploadInterval", "uploadExtraArgs", "showUrlOnly", "region"},
    ("dagsterDaemon",): {"enabled", "image", "runCoordinator", "heartbeatTolerance", "runMonitoring", "runRetries",
                         "sensors", "schedules", "initContainerResources", *_K8S},
    ("dagsterDaemon", "runCoordinator"): {"enabled", "type", "config"},
    ("dagsterDaemon", "runCoordinator", "config"): {"queuedRunCoordinator", "customRunCoordinator"},
    ("dagsterDaemon", "runCoordinator", "config", "queuedRunCoordinator"): {
        "maxConcurrentRuns", "tagConcurrencyLimits", "dequeueIntervalSeconds", "dequeueNumWorkers",
        "dequeueUseThreads", "blockOpConcurrencyLimitedRuns"},
    ("dagsterDaemon", "sensors"): {"useThreads", "numWorkers", "numSubmitWorkers"},
    ("dagsterDaemon", "runMonitoring"): {"enabled", "startTimeoutSeconds", "cancelTimeoutSeconds",
                                         "maxResumeRunAttempts", "pollIntervalSeconds", "freeSlotsAfterRunEndSeconds"},
    ("dagsterDaemon", "runRetries"): {"enabled", "maxRetries"},
    ("rabbitmq",): {"enabled", "image", "rabbitmq", "service", "volumePermissions"},
    ("redis",): {"enabled", "internal", "usePassword", "password", "host", "port", "brokerDbNumber",
                 "backendDbNumber", "brokerUrl", "backendUrl"},
    ("flower",): {"enabled", "image", "service", *_K8S},
    ("telemetry",): {"enabled"},
}
# Values that are Kubernetes objects, validated by the kubernetes package's models.
K8S_MODELS = {"resources": "V1ResourceRequirements", "initContainerResources": "V1ResourceRequirements",
              "securityContext": "V1SecurityContext", "podSecurityContext": "V1PodSecurityContext"}
LIST_MODELS = {"envConfigMaps": "V1ConfigMapEnvSource", "envSecrets": "V1SecretEnvSource"}
# Scalars the chart also accepts as a StringSource ({env: NAME}), rendered by its "stringSource" helper.
STRING_SOURCES = {("computeLogManager", "config", "s3ComputeLogManager"): {"bucket", "endpointUrl", "prefix"}}
ENUMS = {("runLauncher", "type"): {"CeleryK8sRunLauncher", "K8sRunLauncher", "CustomRunLauncher"},
         ("computeLogManager", "type"): {"NoOpComputeLogManager", "AzureBlobComputeLogManager", "GCSComputeLogManager",
                                         "S3ComputeLogManager", "CustomComputeLogManager"},
         ("dagsterDaemon", "runCoordinator", "type"): {"QueuedRunCoordinator", "CustomRunCoordinator"}}


def walk(value: Any, path: tuple[str, ...] = ()):
    """(path, key, value) for every mapping key, lists as "*"."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield path, key, item
            yield from walk(item, (*path, key))
    elif isinstance(value, list):
        for item in value:
            yield from walk(item, (*path, "*"))


def test_helm_values_use_only_keys_the_chart_documents():
    unknown, checked = [], set()
    for path, key, value in walk(VALUES):
        where = ".".join((*path, key))
        if any(part in K8S_MODELS or part in LIST_MODELS or part == "containerConfig" for part in path):
            continue  # inside a Kubernetes object, validated as a whole below
        if path and path[-1] in STRING_SOURCES.get(path[:-1], ()):
            continue  # the {env: NAME} of a StringSource, checked with its key
        if isinstance(value, dict) and key in STRING_SOURCES.get(path, ()):
            assert set(value) == {"env"}, where
            continue
        if path not in CHART_KEYS or key not in CHART_KEYS[path]:
            unknown.append(where)
        if (*path, key) in ENUMS:
            assert value in ENUMS[(*path, key)], f"{where}={value!r}"
        if key in K8S_MODELS:
            to_model(value, K8S_MODELS[key])  # raises on a field Kubernetes does not know
            checked.add(where)
        if key in LIST_MODELS:
            for item in value:
                to_model(item, LIST_MODELS[key])
            checked.add(where)
        if key == "containerConfig":
            container_fields = set(to_model({"name": "x"}, "V1Container").attribute_map.values())
            assert set(value) <= container_fields, where
            for field, model in K8S_MODELS.items():
                if field in value:
                    to_model(value[field], model)
            checked.add(where)
    assert unknown == []
    assert {"dagsterWebserver.resources", "dagsterDaemon.resources", "dagster-user-deployments.deployments.*.resources",
            "dagster-user-deployments.deployments.*.podSecurityContext", "dagsterDaemon.envSecrets",
            "runLauncher.config.k8sRunLauncher.runK8sConfig.containerConfig"} <= checked


def test_helm_values_deploy_what_the_product_needs():
    assert VALUES["runLauncher"]["type"] == "K8sRunLauncher"
    assert VALUES["postgresql"]["enabled"] is False and VALUES["generatePostgresqlPasswordSecret"] is False
    assert "postgresqlPassword" not in VALUES["postgresql"]  # the password lives only in its Secret
    assert VALUES["postgresql"]["postgresqlScheme"] == "postgresql+psycopg2"
    assert VALUES["computeLogManager"]["type"] == "S3ComputeLogManager"
    daemon = VALUES["dagsterDaemon"]
    assert daemon["enabled"] is True and daemon["sensors"]["useThreads"] is True
    [deployment] = VALUES["dagster-user-deployments"]["deployments"]
    assert VALUES["dagster-user-deployments"]["enabled"] is True
    assert deployment["codeServerArgs"] == ["--module-name", "cvn_assets.definitions"]
    assert deployment["image"]["tag"] not in ("", "latest")
    assert deployment["includeConfigInLaunchedRuns"] == {"enabled": True}
    assert deployment["podSecurityContext"]["runAsNonRoot"] is True
    assert deployment["podSecurityContext"]["runAsUser"] == RUN_AS_USER


def test_every_pod_takes_environment_only_from_config_maps_and_secrets():
    launcher = VALUES["runLauncher"]["config"]["k8sRunLauncher"]
    [deployment] = VALUES["dagster-user-deployments"]["deployments"]
    for name, component in {"webserver": VALUES["dagsterWebserver"], "daemon": VALUES["dagsterDaemon"],
                            "user code": deployment, "run launcher": launcher}.items():
        assert not component.get("env"), f"{name} sets literal env"
        assert component["envConfigMaps"] == [{"name": m} for m in ENV_CONFIG_MAPS], name
        for secret in component["envSecrets"]:
            assert secret["name"] in ENV_SECRETS, name
        for item in component["envConfigMaps"]:
            to_model(item, "V1ConfigMapEnvSource")
        for item in component["envSecrets"]:
            to_model(item, "V1SecretEnvSource")
    assert launcher["envVars"] == []
    assert [s["name"] for s in deployment["envSecrets"]] == list(ENV_SECRETS)
    assert [s["name"] for s in launcher["envSecrets"]] == list(ENV_SECRETS)


def test_helm_values_and_the_kubernetes_instance_file_agree():
    launcher_values = VALUES["runLauncher"]["config"]["k8sRunLauncher"]
    launcher = INSTANCE["run_launcher"]["config"]
    assert launcher["env_config_maps"] == [m["name"] for m in launcher_values["envConfigMaps"]]
    assert launcher["env_secrets"] == [s["name"] for s in launcher_values["envSecrets"]]
    assert launcher["postgres_password_secret"] == VALUES["global"]["postgresqlSecretName"]
    assert launcher["dagster_home"] == VALUES["global"]["dagsterHome"]
    assert INSTANCE["storage"]["postgres"]["postgres_db"]["scheme"] == VALUES["postgresql"]["postgresqlScheme"]
    logs = VALUES["computeLogManager"]["config"]["s3ComputeLogManager"]
    assert INSTANCE["compute_logs"]["config"]["prefix"] == logs["prefix"]
    assert INSTANCE["compute_logs"]["config"]["bucket"] == logs["bucket"]
    assert INSTANCE["compute_logs"]["config"]["endpoint_url"] == logs["endpointUrl"]
    daemon = VALUES["dagsterDaemon"]
    assert INSTANCE["run_coordinator"]["config"]["max_concurrent_runs"] == (
        daemon["runCoordinator"]["config"]["queuedRunCoordinator"]["maxConcurrentRuns"])
    assert INSTANCE["run_retries"]["max_retries"] == daemon["runRetries"]["maxRetries"]
    assert INSTANCE["run_monitoring"]["start_timeout_seconds"] == daemon["runMonitoring"]["startTimeoutSeconds"]
    assert INSTANCE["sensors"] == {"use_threads": daemon["sensors"]["useThreads"],
                                   "num_workers": daemon["sensors"]["numWorkers"]}


# ---------------------------------------------------------------------------------------------
# Secret and ConfigMap examples


def k8s_documents(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((DEPLOY / "k8s" / name).read_text()) if d]


def env_references(value: Any) -> set[str]:
    return {v["env"] for _, k, v in walk(value) if isinstance(v, dict) and set(v) == {"env"}} | {
        v for _, k, v in walk(value) if k == "env" and isinstance(v, str)}


def test_secret_examples_are_valid_secrets_without_real_values():
    secrets = [to_model(d, "V1Secret") for d in k8s_documents("secrets.example.yaml")]
    assert all(isinstance(s, V1Secret) for s in secrets)
    assert {s.metadata.name for s in secrets} == {*ENV_SECRETS, VALUES["global"]["postgresqlSecretName"]}
    for secret in secrets:
        for key, value in secret.string_data.items():
            assert value.startswith("<") or "<password>" in value, f"{secret.metadata.name}.{key} looks real"
    postgres = next(s for s in secrets if s.metadata.name == "dagster-postgresql-secret")
    assert set(postgres.string_data) == {"postgresql-password"}  # the key name the chart reads


def test_the_config_map_provides_every_variable_the_instance_reads_and_no_secret():
    [config_map] = [to_model(d, "V1ConfigMap") for d in k8s_documents("configmap.example.yaml")]
    assert isinstance(config_map, V1ConfigMap) and config_map.metadata.name in ENV_CONFIG_MAPS
    provided = set(config_map.data) | {"DAGSTER_PG_PASSWORD"}  # from dagster-postgresql-secret
    assert env_references(INSTANCE) <= provided
    assert env_references(VALUES) <= provided
    assert {"CVN_S3_BUCKET", "CVN_S3_ENDPOINT_URL", "CVN_S3_PREFIX", "CVN_EXECUTOR"} <= set(config_map.data)
    assert config_map.data["CVN_EXECUTOR"] == "k8s"
    assert {"GRPC_ENABLE_FORK_SUPPORT", "GRPC_POLL_STRATEGY"} <= set(config_map.data)  # manual §17.5
    for key, value in config_map.data.items():
        assert not re.search(r"SECRET|PASSWORD|TOKEN|ACCESS_KEY", key), key
        assert "@" not in value, f"{key} embeds credentials"


# ---------------------------------------------------------------------------------------------
# the user-code image


DOCKERFILE = (DEPLOY / "Dockerfile").read_text()
INSTRUCTIONS = [line.strip() for line in re.sub(r"\\\n", " ", DOCKERFILE).splitlines()
                if line.strip() and not line.lstrip().startswith("#")]


def test_every_base_image_is_pinned_to_an_exact_version_or_digest():
    images = [line.split()[1] for line in INSTRUCTIONS if line.startswith("FROM ")]
    assert images, "no FROM"
    for image in images:
        assert "@sha256:" in image or re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+[\w.-]*", image), image
        assert not image.endswith(":latest")


def test_the_image_runs_as_a_non_root_user():
    final_stage = INSTRUCTIONS[max(i for i, line in enumerate(INSTRUCTIONS) if line.startswith("FROM "))]
    users = [line.split()[1] for line in INSTRUCTIONS[INSTRUCTIONS.index(final_stage):] if line.startswith("USER ")]
    assert users, "final stage has no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) == RUN_AS_USER  # numeric, so runAsNonRoot can verify it


def test_the_image_installs_runtime_dependencies_from_the_lock_only():
    install = [line for line in INSTRUCTIONS if "pip install" in line]
    assert install == [next(line for line in INSTRUCTIONS if "--constraint requirements.lock ." in line)]
    assert not re.search(r"--extra|\[dev\]|pytest|moto", " ".join(install))
    assert "walk_packages" in DOCKERFILE and "dagster definitions validate" in DOCKERFILE  # §17.4 smoke test


def test_the_image_ships_bytecode_so_no_pod_compiles_dagster_at_start():
    [install] = [line for line in INSTRUCTIONS if "pip install" in line]
    assert "--compile-bytecode" in install  # the runtime stage sets PYTHONDONTWRITEBYTECODE=1
    assert "cache_from_source" in DOCKERFILE  # the build fails if dagster's bytecode is missing


def test_the_lock_pins_every_runtime_dependency_at_its_declared_version():
    declared = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    locked = dict(line.split("==", 1) for line in (REPO_ROOT / "requirements.lock").read_text().splitlines()
                  if "==" in line and not line.startswith((" ", "#")))
    for requirement in declared:
        name, version = requirement.split("==")
        name = re.sub(r"\[.*\]", "", name).lower().replace("_", "-")
        assert locked.get(name) == version, f"{requirement} is not pinned identically in requirements.lock"


def test_the_build_context_holds_only_what_the_image_copies():
    ignore = [line.strip() for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    assert ignore[0] == "*"  # deny by default: no .venv, .git, tests, .dagster_home, secrets
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copied = set()
    for line in INSTRUCTIONS:
        if line.startswith("COPY ") and "--from=" not in line:
            copied.update(line.split()[1:-1])
    assert {c.rstrip("/") for c in copied} == allowed
    assert all((REPO_ROOT / c).exists() for c in copied)


def test_run_pods_are_sized_like_the_code_server_whose_resources_they_inherit():
    [deployment] = VALUES["dagster-user-deployments"]["deployments"]
    run_pod = VALUES["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]["containerConfig"]["resources"]
    assert run_pod == deployment["resources"]
    assert INSTANCE["run_launcher"]["config"]["run_k8s_config"]["container_config"]["resources"] == run_pod
