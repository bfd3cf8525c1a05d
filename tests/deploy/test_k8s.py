"""deploy/k8s: every manifest of the base and of each rendered overlay validates against
the Kubernetes JSON schemas (strict: unknown fields fail) that kubernetes-validate ships,
the custom resources (PodMonitor, PrometheusRule, ScaledObject, TriggerAuthentication)
against their upstream CRDs (tests/deploy/crds.py), and the pieces agree: probes, ports,
selectors, the GPU request, the service settings the pods will actually run with."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version
from tests.deploy.conftest import (
    DECIDE,
    K8S,
    REPO,
    SCORER,
    WEB,
    container,
    deployments,
    one,
    pod_settings,
    service_config_toml,
)
from tests.deploy.crds import crd_errors

from btsbot_stream.stream.service import FLUSH_TIMEOUT_S

# The oldest Kubernetes we claim to support, and the newest schemas installed.
K8S_VERSIONS = ("1.30", latest_version())
KINDS = {
    "ServiceAccount",
    "ConfigMap",
    "Service",
    "Deployment",
    "PodDisruptionBudget",
    "PodMonitor",
    "ScaledObject",
    "TriggerAuthentication",
    # the overlays' components (deploy/k8s/components)
    "PrometheusRule",
    "Job",
    "NetworkPolicy",
}
# Kinds with no schema a registry serves (Strimzi publishes its CRDs only with its
# releases): checked for what matters to us by test_k8s_components.py instead.
UNVALIDATED = {("kafka.strimzi.io/v1beta2", "KafkaTopic")}


def validation_errors(manifest: dict[str, Any]) -> list[str]:
    """Schema errors of one manifest: Kubernetes kinds for every K8S_VERSIONS, custom
    resources against their upstream CRD; an unknown kind is an error too."""
    if (manifest.get("apiVersion"), manifest.get("kind")) in UNVALIDATED:
        return []
    errors = crd_errors(manifest)
    if errors is not None:
        return errors
    errors = []
    for version in K8S_VERSIONS:
        try:
            kubernetes_validate.validate(manifest, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"k8s {version}: {'/'.join(map(str, exc.path))}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            errors.append(f"k8s {version}: {exc.message}")
    return errors


def base_manifests() -> list[tuple[str, dict]]:
    """Each manifest file of the base on its own (no kustomize needed)."""
    found = []
    for path in sorted((K8S / "base").glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            found.append((path.name, doc))
    return found


@pytest.mark.parametrize(
    ("name", "manifest"), base_manifests(), ids=[n for n, _ in base_manifests()]
)
def test_base_manifest_validates(name: str, manifest: dict) -> None:
    assert validation_errors(manifest) == []


def test_rendered_overlay_validates(overlay: tuple[str, list[dict]]) -> None:
    name, manifests = overlay
    assert {m["kind"] for m in manifests} == KINDS
    for manifest in manifests:
        assert manifest["metadata"]["namespace"] == "btsbot"
        assert validation_errors(manifest) == [], (name, manifest["kind"])


def test_validation_can_fail() -> None:
    deployment = dict(base_manifests())["deployment.yaml"]
    broken = json.loads(json.dumps(deployment))
    spec = broken["spec"]["template"]["spec"]
    spec["containers"][0]["readinessProbe"]["periodSecond"] = 10  # typo: unknown field
    spec["terminationGracePeriodSeconds"] = "90"  # wrong type
    errors = validation_errors(broken)
    assert any("periodSecond" in e for e in errors)
    scaled = json.loads(json.dumps(dict(base_manifests())["scaledobject.yaml"]))
    scaled["spec"]["maxReplicas"] = 3
    scaled["spec"]["triggers"][0]["metadata"]["lagThreshold"] = 2000  # KEDA wants strings
    assert len(validation_errors(scaled)) == 2
    monitor = json.loads(json.dumps(dict(base_manifests())["podmonitor.yaml"]))
    monitor["spec"]["podMetricsEndpoints"][0]["intervall"] = "15s"
    assert any("intervall" in e for e in validation_errors(monitor))
    assert validation_errors({"apiVersion": "example.com/v1", "kind": "Widget"})


# --- how the pods run --------------------------------------------------------------------


def _env(c: dict) -> dict[str, dict]:
    return {e["name"]: e for e in c.get("env", [])}


def _dockerfile_uid(name: str) -> int:
    text = (REPO / "docker" / name).read_text()
    match = re.search(r"^ARG UID=(\d+)$", text, re.MULTILINE)
    assert match, f"{name}: no ARG UID"
    return int(match[1])


def test_pod_security(overlay: tuple[str, list[dict]]) -> None:
    _, manifests = overlay
    for deployment in deployments(manifests).values():
        pod = deployment["spec"]["template"]["spec"]
        c = container(deployment)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == _dockerfile_uid("Dockerfile")
        assert pod["securityContext"]["runAsUser"] == _dockerfile_uid("Dockerfile.cuda")
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod["automountServiceAccountToken"] is False
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
        # a read-only root needs a writable /tmp
        mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]]


def test_probes_ports_and_drain(overlay: tuple[str, list[dict]]) -> None:
    _, manifests = overlay
    deployment = one(manifests, "Deployment", SCORER)
    c = container(deployment)
    settings = tomllib.loads(service_config_toml(manifests))
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports["metrics"] == settings["observability"]["metrics_port"] == 9108
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert c["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert c["args"] == ["run", "--config", "/etc/btsbot/config.toml"]
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > FLUSH_TIMEOUT_S, "SIGKILL could land while the producer still flushes"
    config_mount = next(m for m in c["volumeMounts"] if m["mountPath"] == "/etc/btsbot")
    assert config_mount["readOnly"] is True


def test_each_selector_picks_exactly_its_pods(overlay: tuple[str, list[dict]]) -> None:
    """A stage's Deployment, Service, PodDisruptionBudget and spread constraint select its
    own pods and no other stage's (a scorer selector that also matched the decision
    stage's pods would fight over them, send it traffic, count it in the scorer's
    drains); the PodMonitor and the NetworkPolicy select every stage's pods, the web's
    ingress policy the web's alone; nothing selects the topics Job's pod."""
    _, manifests = overlay
    stages = deployments(manifests)
    assert set(stages) == {SCORER, DECIDE, WEB}
    pods = {name: d["spec"]["template"]["metadata"]["labels"] for name, d in stages.items()}
    pods |= {
        f"job/{m['metadata']['name']}": m["spec"]["template"]["metadata"]["labels"]
        for m in manifests
        if m["kind"] == "Job"
    }
    components = {pods[name].get("app.kubernetes.io/component") for name in stages}
    assert None not in components and len(components) == len(stages), "a component per stage"

    def selected(selector: dict[str, str]) -> set[str]:
        assert selector, "an empty selector selects everything"
        return {name for name, labels in pods.items() if selector.items() <= labels.items()}

    for name, deployment in stages.items():
        spec = deployment["spec"]
        assert selected(spec["selector"]["matchLabels"]) == {name}
        for spread in spec["template"]["spec"].get("topologySpreadConstraints", []):
            assert selected(spread["labelSelector"]["matchLabels"]) == {name}
    for service in (m for m in manifests if m["kind"] == "Service"):
        name = service["metadata"]["name"]
        assert selected(service["spec"]["selector"]) == {name}
        ports = {p["name"] for p in container(stages[name])["ports"]}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports
    # The web runs one replica with nothing to drain: no budget.
    budgets = {m["metadata"]["name"]: m for m in manifests if m["kind"] == "PodDisruptionBudget"}
    assert set(budgets) == {SCORER, DECIDE}
    for name, budget in budgets.items():
        assert selected(budget["spec"]["selector"]["matchLabels"]) == {name}
    podmonitor = one(manifests, "PodMonitor")["spec"]
    assert selected(podmonitor["selector"]["matchLabels"]) == set(stages)
    # The stages it scrapes: those with the endpoints' port (all three).
    endpoint_ports = {e["port"] for e in podmonitor["podMetricsEndpoints"]}
    scraped = {
        name
        for name, deployment in stages.items()
        if endpoint_ports <= {p["name"] for p in container(deployment)["ports"]}
    }
    assert scraped == {SCORER, DECIDE, WEB}
    policy = one(manifests, "NetworkPolicy", "btsbot-stream")["spec"]
    assert selected(policy["podSelector"]["matchLabels"]) == set(stages)
    web_policy = one(manifests, "NetworkPolicy", WEB)["spec"]
    assert selected(web_policy["podSelector"]["matchLabels"]) == {WEB}


def test_autoscaling_follows_the_consumer_group(overlay: tuple[str, list[dict]]) -> None:
    """KEDA scales the scorer on its group's lag, and nothing else: the decision stage,
    stateful, keeps its fixed count (docs/operator-guide.md, Decision stage)."""
    name, manifests = overlay
    deployment = one(manifests, "Deployment", SCORER)
    env = _env(container(deployment))
    spec = one(manifests, "ScaledObject")["spec"]
    assert spec["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert "replicas" not in deployment["spec"], "KEDA owns the replica count"
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    (trigger,) = spec["triggers"]
    metadata = trigger["metadata"]
    assert trigger["type"] == "kafka"
    assert metadata["allowIdleConsumers"] == "false"
    # KEDA reads the same bootstrap servers and group as the pods, from their env
    assert metadata["bootstrapServersFromEnv"] == "BTSBOT_KAFKA__BOOTSTRAP_SERVERS"
    assert metadata["consumerGroupFromEnv"] == "BTSBOT_KAFKA__GROUP_ID"
    for variable in (metadata["bootstrapServersFromEnv"], metadata["consumerGroupFromEnv"]):
        assert "value" in env[variable]
    settings = tomllib.loads(service_config_toml(manifests))
    assert metadata["offsetResetPolicy"] == settings["kafka"]["auto_offset_reset"]
    if name == "gpu":
        assert spec["maxReplicaCount"] <= 2 and metadata["lagThreshold"] == "10000"
    targets = {
        m["spec"]["scaleTargetRef"]["name"] for m in manifests if m["kind"] == "ScaledObject"
    }
    assert targets == {SCORER}
    assert one(manifests, "Deployment", DECIDE)["spec"]["replicas"] >= 1
    assert one(manifests, "Deployment", WEB)["spec"]["replicas"] == 1
    text = (K8S / "base" / "scaledobject.yaml").read_text()
    assert "consumer group" in text and "maxReplicaCount <= the partitions" in text


def test_sasl_credentials_come_from_a_secret(overlay: tuple[str, list[dict]]) -> None:
    _, manifests = overlay
    for deployment in deployments(manifests).values():
        env = _env(container(deployment))
        for prop, key in (("sasl.username", "username"), ("sasl.password", "password")):
            ref = env[f"BTSBOT_KAFKA__PROPERTIES__{prop}"]["valueFrom"]["secretKeyRef"]
            assert ref["name"] == "btsbot-stream-kafka" and ref["key"] == key
    auth = one(manifests, "TriggerAuthentication")["spec"]["secretTargetRef"]
    assert {(r["parameter"], r["name"], r["key"]) for r in auth} == {
        ("username", "btsbot-stream-kafka", "username"),
        ("password", "btsbot-stream-kafka", "password"),
    }


def test_gpu_overlay_requests_a_gpu_and_refuses_the_cpu(overlay: tuple[str, list[dict]]) -> None:
    name, manifests = overlay
    c = container(one(manifests, "Deployment", SCORER))
    env = _env(c)
    resources = c["resources"]
    decide = container(one(manifests, "Deployment", DECIDE))
    assert "nvidia.com/gpu" not in json.dumps(decide["resources"]), "it runs no model"
    if name == "gpu":
        assert resources["requests"]["nvidia.com/gpu"] == 1
        assert resources["limits"]["nvidia.com/gpu"] == 1
        assert env["BTSBOT_ENGINE__DEVICE"]["value"] == "cuda"
        assert c["image"].endswith("-cuda")
    else:
        assert "nvidia.com/gpu" not in json.dumps(resources)
        assert env["BTSBOT_ENGINE__DEVICE"]["value"] == "cpu"
        assert not c["image"].endswith("-cuda")


def test_pods_run_a_valid_configuration(
    overlay: tuple[str, list[dict]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The ConfigMap's TOML plus the container's environment, as the pod will see them,
    load through the service's own settings model; no setting has two sources."""
    name, manifests = overlay
    c = container(one(manifests, "Deployment", SCORER))
    text = service_config_toml(manifests)
    settings = pod_settings(manifests, monkeypatch, tmp_path)
    assert settings.engine.device == ("cuda" if name == "gpu" else "cpu")
    assert settings.engine.threads == int(c["resources"]["requests"]["cpu"])
    assert settings.kafka.client_properties()["sasl.username"] == "from-the-secret"
    assert settings.kafka.bootstrap_servers.endswith(":9092")
    assert "models_dir" not in tomllib.loads(text)["engine"], "the image sets it"
