"""deploy/k8s/components/decide: the decision stage's Deployment, rendered inside each
overlay as an overlay will include it (``components: [../../components/decide]``),
validates, shares the scorer's ConfigMap and Secret, and runs a valid configuration."""

from __future__ import annotations

import os
import shutil
import tomllib
from pathlib import Path

import pytest
from tests.deploy.conftest import K8S, OVERLAYS, render
from tests.deploy.test_k8s import validation_errors

from btsbot_stream import config as service_config

COMPONENT = K8S / "components" / "decide"


@pytest.fixture(scope="module", params=OVERLAYS)
def with_decide(request: pytest.FixtureRequest, tmp_path_factory) -> list[dict]:
    """The overlay's manifests with the decide component added to it."""
    folder = tmp_path_factory.mktemp(f"overlay-{request.param}")
    for path in (K8S / "overlays" / request.param).iterdir():
        shutil.copy(path, folder)
    kustomization = folder / "kustomization.yaml"
    base = os.path.relpath(K8S / "base", folder)
    component = os.path.relpath(COMPONENT, folder)
    text = kustomization.read_text().replace("  - ../../base", f"  - {base}")
    kustomization.write_text(text + f"components:\n  - {component}\n")
    return render(folder)


def _decide(manifests: list[dict]) -> dict:
    (found,) = [m for m in manifests if m["metadata"]["name"] == "btsbot-stream-decide"]
    return found


def test_the_decide_deployment_validates(with_decide: list[dict]) -> None:
    assert validation_errors(_decide(with_decide)) == []


def test_it_shares_the_scorers_settings_and_is_scraped(with_decide: list[dict]) -> None:
    deployment = _decide(with_decide)
    pod = deployment["spec"]["template"]
    (c,) = pod["spec"]["containers"]
    assert c["args"] == ["decide", "--config", "/etc/btsbot/config.toml"]
    (config_map,) = [m for m in with_decide if m["kind"] == "ConfigMap"]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["config"]["configMap"]["name"] == config_map["metadata"]["name"]
    scorer = next(
        m
        for m in with_decide
        if m["kind"] == "Deployment" and m["metadata"]["name"] == "btsbot-stream"
    )
    assert c["image"] == scorer["spec"]["template"]["spec"]["containers"][0]["image"]
    assert deployment["metadata"]["namespace"] == scorer["metadata"]["namespace"]
    podmonitor = next(m for m in with_decide if m["kind"] == "PodMonitor")["spec"]
    labels = pod["metadata"]["labels"]
    assert podmonitor["selector"]["matchLabels"].items() <= labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    settings = tomllib.loads(config_map["data"]["config.toml"])
    assert ports["metrics"] == settings["observability"]["metrics_port"]
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}


def test_the_pod_runs_a_valid_configuration(
    with_decide: list[dict], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    deployment = _decide(with_decide)
    spec = deployment["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    (config_map,) = [m for m in with_decide if m["kind"] == "ConfigMap"]
    for variable in list(os.environ):
        if variable.startswith("BTSBOT_"):
            monkeypatch.delenv(variable)
    for item in c["env"]:
        monkeypatch.setenv(item["name"], item.get("value", "from-the-secret"))
    path = tmp_path / "config.toml"
    path.write_text(config_map["data"]["config.toml"])
    settings = service_config.load(path)
    # the state folder is a writable volume (the root filesystem is read-only)
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert "emptyDir" in volumes[mounts[str(settings.decide.state_dir)]]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert settings.kafka.client_properties()["sasl.username"] == "from-the-secret"
