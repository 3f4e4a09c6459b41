"""deploy/k8s: the kustomize base, read resource by resource and rendered by kubectl.

No cluster runs here: the manifests are checked by reading them (commands parsed by the real
CLI, variables against the settings) and rendered with ``kubectl kustomize`` (client side).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from postier import tasknames
from tests.deploy.commands import assert_both_lanes, parse_command, setting_exists, settings_from

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
#: a Deployment per lane (postier/dispatch/lanes.py), by the node name of its worker
WORKERS = {
    "postier-worker": "worker",
    "postier-worker-bulk": "worker-bulk",
    "postier-worker-callbacks": "worker-callbacks",
}


def load_base() -> tuple[dict[str, Any], dict[tuple[str, str], dict[str, Any]]]:
    """The kustomization and its resources, keyed by (kind, name)."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    resources: dict[tuple[str, str], dict[str, Any]] = {}
    for name in kustomization["resources"]:
        for document in yaml.safe_load_all((K8S / name).read_text()):
            resources[(document["kind"], document["metadata"]["name"])] = document
    return kustomization, resources


@pytest.fixture(scope="module")
def base() -> tuple[dict[str, Any], dict[tuple[str, str], dict[str, Any]]]:
    return load_base()


def pod_spec(resource: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = resource["spec"]["template"]["spec"]
    return spec


def test_the_base_has_every_role(base: Any) -> None:
    _, resources = base
    assert set(resources) == {
        ("Job", "postier-migrate"),
        ("Deployment", "postier-worker"),
        ("Deployment", "postier-worker-bulk"),
        ("Deployment", "postier-worker-callbacks"),
        ("Deployment", "postier-beat"),
        ("Deployment", "postier-flower"),
        ("Service", "postier-flower"),
        ("Deployment", "postier-webhooks"),
        ("Service", "postier-webhooks"),
        ("NetworkPolicy", "postier-webhooks"),
        ("NetworkPolicy", "postier-flower"),
        ("Deployment", "postier-api"),
        ("Service", "postier-api"),
        ("NetworkPolicy", "postier-api"),
    }


def test_every_container_command_parses_and_reads_config_and_secrets(base: Any) -> None:
    kustomization, resources = base
    config = kustomization["configMapGenerator"][0]["name"]
    secret = kustomization["secretGenerator"][0]["name"]
    paths = {}
    for (kind, name), resource in resources.items():
        if kind in ("Service", "NetworkPolicy"):
            continue
        spec = pod_spec(resource)
        assert spec["securityContext"]["runAsNonRoot"] is True
        (container,) = spec["containers"]
        assert container["image"] == "postier"
        assert container["envFrom"] == [
            {"configMapRef": {"name": config}},
            {"secretRef": {"name": secret}},
        ]
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        paths[name] = parse_command(container["command"]).path
        for probe in ("livenessProbe", "readinessProbe"):
            command = container.get(probe, {}).get("exec", {}).get("command")
            if command:
                assert parse_command(command).path == ("health",)
    assert paths == {
        "postier-migrate": ("db", "upgrade"),
        "postier-worker": ("worker", "worker"),
        "postier-worker-bulk": ("worker", "worker"),
        "postier-worker-callbacks": ("worker", "worker"),
        "postier-beat": ("scheduler", "beat"),
        "postier-flower": ("flower",),
        "postier-webhooks": ("webhooks",),
        "postier-api": ("api",),
    }


def worker_container(resource: dict[str, Any]) -> dict[str, Any]:
    (container,) = pod_spec(resource)["containers"]
    found: dict[str, Any] = container
    return found


def test_a_worker_per_lane_and_every_queue_consumed(base: Any) -> None:
    _, resources = base
    workers = {
        name: parse_command(pod_spec(resource)["containers"][0]["command"])
        for (kind, name), resource in resources.items()
        if kind == "Deployment" and name.startswith("postier-worker")
    }
    assert set(workers) == set(WORKERS)
    assert_both_lanes(workers)
    bulk = workers["postier-worker-bulk"].params
    assert bulk["queues"] == list(tasknames.BULK_QUEUES)
    # in a container Celery's default concurrency is the node's CPU count: it must be set
    assert isinstance(bulk["concurrency"], int) and 1 <= bulk["concurrency"] <= 8
    # each Deployment selects its own pods only (scaled, rolled and autoscaled apart)
    for name in WORKERS:
        resource = resources[("Deployment", name)]
        own = {"app.kubernetes.io/name": name}
        assert resource["spec"]["selector"]["matchLabels"] == own
        assert resource["spec"]["template"]["metadata"]["labels"] == own


def test_workers_scale_and_shut_down_warm(base: Any) -> None:
    _, resources = base
    assert resources[("Deployment", "postier-worker")]["spec"]["replicas"] >= 2
    assert resources[("Deployment", "postier-worker-bulk")]["spec"]["replicas"] >= 1
    for name, node in WORKERS.items():
        worker = resources[("Deployment", name)]
        assert worker["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0, name
        spec = pod_spec(worker)
        assert spec["terminationGracePeriodSeconds"] >= 60, name
        assert spec["securityContext"] == {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
        }
        container = worker_container(worker)
        # exec form: celery is the container's first process and gets the SIGTERM itself
        assert container["command"][0] == "celery"
        assert "lifecycle" not in container, "no preStop: SIGTERM is Celery's warm shutdown"
        assert container["ports"] == [{"name": "metrics", "containerPort": 9540}]
        annotations = worker["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == "9540"
        probe = container["livenessProbe"]["exec"]["command"]
        assert parse_command(probe).params["worker_name"] == f"{node}@$HOSTNAME"
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
        assert {"name": "tmp", "emptyDir": {}} in spec["volumes"]
    transactional = worker_container(resources[("Deployment", "postier-worker")])
    bulk = worker_container(resources[("Deployment", "postier-worker-bulk")])
    # the probes are the same apart from the node name
    assert {k: v for k, v in bulk["livenessProbe"].items() if k != "exec"} == {
        k: v for k, v in transactional["livenessProbe"].items() if k != "exec"
    }


def test_the_bulk_worker_is_sized_for_prefork_and_its_metrics_can_write(base: Any) -> None:
    """prefork: a process per slot (memory), and prometheus_client's multiprocess files on the
    writable /tmp emptyDir (the root filesystem is read-only)."""
    _, resources = base
    container = worker_container(resources[("Deployment", "postier-worker-bulk")])
    resources_ = container["resources"]
    assert resources_["requests"] == {"cpu": "2", "memory": "768Mi"}  # 4 processes, 2 per core
    assert resources_["limits"] == {"memory": "1536Mi"}
    env = {item["name"]: item["value"] for item in container["env"]}
    assert all(setting_exists(key) for key in env), env
    directory = settings_from(env).metrics.multiprocess_dir
    assert directory is not None and Path(directory).is_relative_to("/tmp")


def test_one_beat_and_flower_behind_auth(base: Any) -> None:
    _, resources = base
    beat = resources[("Deployment", "postier-beat")]
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    flower = resources[("Deployment", "postier-flower")]
    (container,) = pod_spec(flower)["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthcheck"
    assert resources[("Service", "postier-flower")]["spec"]["ports"][0]["port"] == 5555
    job = resources[("Job", "postier-migrate")]
    assert job["spec"]["ttlSecondsAfterFinished"] > 0
    assert pod_spec(job)["restartPolicy"] == "OnFailure"


def test_config_and_secret_keys_are_settings(base: Any) -> None:
    kustomization, _ = base
    literals = dict(
        line.split("=", 1) for line in kustomization["configMapGenerator"][0]["literals"]
    )
    assert all(setting_exists(key) for key in literals), literals
    settings = settings_from(literals)
    assert settings.log.format == "json"
    assert settings.metrics.port == 9540
    (env_file,) = kustomization["secretGenerator"][0]["envs"]
    keys = [
        line.split("=", 1)[0]
        for line in (K8S / env_file).read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert all(setting_exists(key) for key in keys), keys
    assert "POSTIER_FLOWER__PASSWORD" in keys and "POSTIER_DATABASE_URL" in keys
    # URLs holding passwords, and the callback secret, are secrets, never config
    assert {"POSTIER_REDIS_URL", "POSTIER_WEBHOOKS__SECRET", "POSTIER_RETENTION__HASH_KEY"} <= set(
        keys
    )
    assert not set(keys) & set(literals), "a setting is either config or secret"


def test_kubectl_renders_the_base() -> None:
    """``kubectl kustomize`` (client side, no cluster) when kubectl is installed; the same
    checks on the files themselves otherwise."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        rendered = [doc for _, doc in load_base()[1].items()]
    else:
        result = subprocess.run(
            [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        rendered = list(yaml.safe_load_all(result.stdout))
        kinds = sorted(doc["kind"] for doc in rendered)
        # every Deployment file of the base, rendered (workers of each lane and callbacks, beat,
        # Flower, webhooks, the API)
        files = [doc for _, doc in load_base()[1].items() if doc["kind"] == "Deployment"]
        assert kinds.count("Deployment") == len(files) == 7
        assert "ConfigMap" in kinds and "Secret" in kinds
        deployments = {doc["metadata"]["name"] for doc in rendered if doc["kind"] == "Deployment"}
        assert set(WORKERS) <= deployments
        config = next(doc for doc in rendered if doc["kind"] == "ConfigMap")
        assert config["metadata"]["name"].startswith("postier-config-")
    for doc in rendered:
        if doc["kind"] in ("Deployment", "Job"):
            (container,) = doc["spec"]["template"]["spec"]["containers"]
            expected = "postier:local" if kubectl else "postier"
            assert container["image"] == expected
            if kubectl:
                refs = [next(iter(ref.values()))["name"] for ref in container["envFrom"]]
                assert refs[0].startswith("postier-config-")
                assert refs[1].startswith("postier-secrets-")


def test_only_the_ingress_controller_reaches_the_receiver(base: Any) -> None:
    _, resources = base
    policy = resources[("NetworkPolicy", "postier-webhooks")]["spec"]
    webhooks = resources[("Deployment", "postier-webhooks")]
    assert policy["podSelector"]["matchLabels"] == webhooks["spec"]["selector"]["matchLabels"]
    assert policy["policyTypes"] == ["Ingress"]
    (rule,) = policy["ingress"]
    assert rule["ports"] == [{"port": 8026, "protocol": "TCP"}]
    assert [source["namespaceSelector"]["matchLabels"] for source in rule["from"]] == [
        {"kubernetes.io/metadata.name": "ingress-nginx"}
    ]
    flower = resources[("NetworkPolicy", "postier-flower")]["spec"]
    assert flower["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "postier-flower"}
    assert flower["ingress"][0]["ports"] == [{"port": 5555, "protocol": "TCP"}]


def test_the_api_is_probed_on_its_readiness_and_reached_on_its_port(base: Any) -> None:
    kustomization, resources = base
    api = resources[("Deployment", "postier-api")]
    (container,) = pod_spec(api)["containers"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/v1/health", "port": "http"}
    assert container["ports"] == [{"name": "http", "containerPort": 8027}]
    literals = kustomization["configMapGenerator"][0]["literals"]
    assert "POSTIER_API__HOST=0.0.0.0" in literals and "POSTIER_API__PORT=8027" in literals
    policy = resources[("NetworkPolicy", "postier-api")]["spec"]
    assert policy["podSelector"]["matchLabels"] == api["spec"]["selector"]["matchLabels"]
    (rule,) = policy["ingress"]
    assert rule["ports"] == [{"port": 8027, "protocol": "TCP"}]
