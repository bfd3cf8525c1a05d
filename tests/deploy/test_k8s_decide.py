"""deploy/k8s/components/decide: every overlay runs the decision stage beside the scorer,
with the scorer's ConfigMap, Secret, image and Kafka, a fixed replica count (no KEDA),
a writable state folder, and a valid configuration."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import yaml
from tests.deploy.conftest import (
    DECIDE,
    K8S,
    OVERLAYS,
    SCORER,
    container,
    one,
    pod_settings,
)

# Components whose patches reach every stage only when listed after the stages'.
CROSS_CUTTING = ("kafka-sasl-ssl", "kafka-private-ca")


@pytest.mark.parametrize("stage", ["decide", "web"])
@pytest.mark.parametrize("name", OVERLAYS)
def test_every_overlay_runs_the_stage(name: str, stage: str) -> None:
    """The decision stage and the scanning page (tests/deploy/test_web_deploy.py) in
    every overlay, before the components that patch every stage."""
    text = (K8S / "overlays" / name / "kustomization.yaml").read_text()
    components = [Path(c).name for c in yaml.safe_load(text)["components"]]
    assert stage in components
    for later in CROSS_CUTTING:
        if later in components:
            assert components.index(later) > components.index(stage), later


def _config_map_name(scorer: dict) -> str:
    volumes = {v["name"]: v for v in scorer["spec"]["template"]["spec"]["volumes"]}
    return volumes["config"]["configMap"]["name"]


def test_it_shares_the_scorers_settings_and_is_scraped(overlay: tuple[str, list[dict]]) -> None:
    _, manifests = overlay
    deployment = one(manifests, "Deployment", DECIDE)
    scorer = one(manifests, "Deployment", SCORER)
    pod = deployment["spec"]["template"]
    c = container(deployment)
    assert c["args"] == ["decide", "--config", "/etc/btsbot/config.toml"]
    config_map = one(manifests, "ConfigMap", _config_map_name(scorer))
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["config"]["configMap"]["name"] == config_map["metadata"]["name"]
    assert c["image"] == container(scorer)["image"]
    assert deployment["metadata"]["namespace"] == scorer["metadata"]["namespace"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    scorer_env = {e["name"]: e.get("value") for e in container(scorer)["env"]}
    key = "BTSBOT_KAFKA__BOOTSTRAP_SERVERS"
    assert env[key] == scorer_env[key] and env[key].endswith(":9092")
    podmonitor = one(manifests, "PodMonitor")["spec"]
    assert podmonitor["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    settings = tomllib.loads(config_map["data"]["config.toml"])
    assert ports["metrics"] == settings["observability"]["metrics_port"]
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}


def test_the_pod_runs_a_valid_configuration(
    overlay: tuple[str, list[dict]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _, manifests = overlay
    deployment = one(manifests, "Deployment", DECIDE)
    spec = deployment["spec"]["template"]["spec"]
    c = container(deployment)
    settings = pod_settings(manifests, monkeypatch, tmp_path, DECIDE)
    # the state folder is a writable volume (the root filesystem is read-only)
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert "emptyDir" in volumes[mounts[str(settings.decide.state_dir)]]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert settings.kafka.client_properties()["sasl.username"] == "from-the-secret"
    assert settings.observability.metrics_port == 9108


def test_a_fixed_count_in_a_group_of_its_own(
    overlay: tuple[str, list[dict]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Not autoscaled (see test_k8s.py: KEDA targets the scorer alone), so a fixed count,
    and its own consumer group: the scorer's group, which KEDA watches, never holds it."""
    _, manifests = overlay
    replicas = one(manifests, "Deployment", DECIDE)["spec"]["replicas"]
    assert replicas >= 1
    (tmp_path / "decide").mkdir()
    (tmp_path / "scorer").mkdir()
    decide = pod_settings(manifests, monkeypatch, tmp_path / "decide", DECIDE)
    scorer = pod_settings(manifests, monkeypatch, tmp_path / "scorer", SCORER)
    assert decide.decide.group_id != scorer.kafka.group_id
    assert decide.kafka.output_topic == scorer.kafka.output_topic
