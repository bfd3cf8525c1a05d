"""The scanning page (``btsbot-stream web``) in both deployments: in every Kubernetes
overlay (listed: test_k8s_decide.py) a Deployment of its own with a ClusterIP Service of
the same name, reading the scorer's settings (its bootstrap servers, the scored and
candidates topics, the Kafka Secret), an optional token from a Secret, admitted by the
NetworkPolicy from the ingress controller only; in compose, built like the other stages,
published on 127.0.0.1 only. The container's arguments are parsed by the web command
itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.deploy.conftest import (
    DECIDE,
    REPO,
    SCORER,
    WEB,
    container,
    one,
    pod_environment,
    pod_settings,
    service_config_toml,
    web_command,
)
from tests.deploy.test_compose import COMPOSE_FILES, _published, load

from btsbot_stream.cli import main

CONFIG = "/etc/btsbot/config.toml"


def _web_pod(
    manifests: list[dict], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> tuple[dict, dict[str, Any], Any]:
    """The web container, and what its command makes of its arguments and environment
    with the ConfigMap's file where the pod mounts it."""
    deployment = one(manifests, "Deployment", WEB)
    c = container(deployment)
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    config_volume = next(n for n, v in volumes.items() if "configMap" in v)
    assert Path(CONFIG).parent == Path(mounts[config_volume])
    assert c["args"][c["args"].index("--config") + 1] == CONFIG
    local = tmp_path / "web-config.toml"
    local.write_text(service_config_toml(manifests))
    pod_environment(c, monkeypatch)
    params, connection = web_command(c["args"], {CONFIG: local}, monkeypatch)
    return c, params, connection


def test_it_reads_the_stages_settings_and_kafka(
    overlay: tuple[str, list[dict]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The scorer's image, ConfigMap and bootstrap servers; the topics the scorer and the
    decision stage write, as their own settings name them."""
    _, manifests = overlay
    deployment, scorer = one(manifests, "Deployment", WEB), one(manifests, "Deployment", SCORER)
    (tmp_path / "s").mkdir()
    (tmp_path / "d").mkdir()
    scorer_settings = pod_settings(manifests, monkeypatch, tmp_path / "s", SCORER)
    decide_settings = pod_settings(manifests, monkeypatch, tmp_path / "d", DECIDE)
    c, params, connection = _web_pod(manifests, monkeypatch, tmp_path)
    assert c["image"] == container(scorer)["image"]
    assert deployment["metadata"]["namespace"] == scorer["metadata"]["namespace"]
    config_maps = {
        v["configMap"]["name"]
        for d in (deployment, scorer)
        for v in d["spec"]["template"]["spec"]["volumes"]
        if "configMap" in v
    }
    assert len(config_maps) == 1
    assert connection.bootstrap == scorer_settings.kafka.bootstrap_servers
    assert connection.bootstrap.endswith(":9092")
    assert connection.scored_topic == scorer_settings.kafka.output_topic
    assert connection.candidates_topic == decide_settings.decide.candidates_topic
    assert connection.properties["sasl.username"] == "from-the-secret"
    assert params["candidates"] is True
    # every variable it sets is one the web command (or matplotlib) reads
    web = main.commands["web"]
    read = {p.envvar for p in web.params if p.envvar} | {"MPLCONFIGDIR"}
    for env in c["env"]:
        assert env["name"] in read or env["name"].startswith("BTSBOT_KAFKA__PROPERTIES__")


def test_it_serves_on_its_port_with_an_optional_token(
    overlay: tuple[str, list[dict]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _, manifests = overlay
    c, params, _ = _web_pod(manifests, monkeypatch, tmp_path)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert params["host"] == "0.0.0.0" and params["port"] == ports["http"]
    assert params["metrics_port"] == ports["metrics"] == 9108  # as every stage's
    assert params["token"] == "from-the-secret"
    env = {e["name"]: e for e in c["env"]}
    ref = env["BTSBOT_WEB__TOKEN"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": WEB, "key": "token", "optional": True}
    # the page's own /healthz (it fails when the window's feed died) keeps it alive;
    # ready once the window is read and a broker answers (/readyz of the metrics port)
    assert c["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    # matplotlib's cache on a writable volume (the root filesystem is read-only)
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    assert any(Path(env["MPLCONFIGDIR"]["value"]).is_relative_to(m) for m in mounts)
    assert "/tmp" in mounts


def test_its_service_is_inside_the_cluster(overlay: tuple[str, list[dict]]) -> None:
    _, manifests = overlay
    deployment = one(manifests, "Deployment", WEB)
    service = one(manifests, "Service", WEB)["spec"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/component"] == "web"
    assert service["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service.get("type", "ClusterIP") == "ClusterIP"
    (port,) = service["ports"]
    assert port["targetPort"] == "http" and "nodePort" not in port


def test_only_the_ingress_controller_reaches_it(overlay: tuple[str, list[dict]]) -> None:
    """Its users come through the ingress controller's namespace, to the HTTP port, and
    to the web's pods only; every other stage keeps Prometheus as its only client."""
    _, manifests = overlay
    policy = one(manifests, "NetworkPolicy", WEB)["spec"]
    deployment = one(manifests, "Deployment", WEB)
    assert policy["podSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert policy["policyTypes"] == ["Ingress"]
    (rule,) = policy["ingress"]
    assert [(p["port"], p["protocol"]) for p in rule["ports"]] == [("http", "TCP")]
    (source,) = rule["from"]  # one named namespace, never "anyone"
    assert set(source) == {"namespaceSelector"}
    assert set(source["namespaceSelector"]["matchLabels"]) == {"kubernetes.io/metadata.name"}
    others = [m for m in manifests if m["kind"] == "NetworkPolicy" and m["metadata"]["name"] != WEB]
    for other in others:
        for rule in other["spec"].get("ingress", []):
            assert all(p["port"] != "http" for p in rule["ports"])


# --- compose ---------------------------------------------------------------------------


def _compose_web(
    variables: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, Any], dict[str, Any], Any]:
    """compose.yaml's services with these variables, and what the web command makes of
    the web service's command and environment with the stack's config.toml."""
    services = load(COMPOSE_FILES[0], {"GRAFANA_ADMIN_PASSWORD": "s3cret", **variables})
    web = services["services"]["web"]
    environment = [{"name": k, "value": v} for k, v in web["environment"].items()]
    pod_environment({"env": environment}, monkeypatch)
    params, connection = web_command(
        web["command"], {CONFIG: REPO / "docker" / "config.toml"}, monkeypatch
    )
    return services["services"], params, connection


def test_compose_runs_it_on_loopback_with_the_stack_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    services, params, connection = _compose_web({"WEB_TOKEN": "t0k"}, monkeypatch)
    web, btsbot = services["web"], services["btsbot"]
    assert web["build"] == btsbot["build"] and web["image"] == btsbot["image"]
    assert f"./config.toml:{CONFIG}:ro" in web["volumes"]
    assert web["depends_on"]["topic-init"]["condition"] == "service_completed_successfully"
    assert web["read_only"] is True
    assert params["token"] == "t0k"
    assert {_published(p)[0] for p in web["ports"]} == {"127.0.0.1"}
    inside = sorted(int(p.rsplit(":", 1)[1]) for p in web["ports"])
    assert inside == sorted([params["port"], params["metrics_port"]])
    assert params["host"] == "0.0.0.0"  # inside the container; the host side is loopback
    assert f":{params['metrics_port']}/readyz" in " ".join(web["healthcheck"]["test"])
    # Prometheus scrapes its metrics port, under the same job, as component "web"
    scrape = yaml.safe_load((REPO / "deploy" / "prometheus" / "prometheus.yml").read_text())
    (job,) = [c for c in scrape["scrape_configs"] if c["job_name"] == "btsbot-stream"]
    found = {(n, sd["port"]) for sd in job["dns_sd_configs"] for n in sd["names"]}
    assert ("web", params["metrics_port"]) in found
    assert any(Path(web["environment"]["MPLCONFIGDIR"]).is_relative_to(t) for t in web["tmpfs"])
    # the Kafka and topics of the stack: what topic-init creates, at the broker's address
    script = services["topic-init"]["command"][0]
    assert f"--topic {connection.scored_topic} " in script
    assert f"--topic {connection.candidates_topic} " in script
    assert connection.bootstrap == "kafka:9092"
    assert "kafka:9092" in services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert not (REPO / "docker" / "compose.web.yaml").exists(), "folded into compose.yaml"


def test_compose_without_a_token_variable_sets_none(monkeypatch: pytest.MonkeyPatch) -> None:
    _, params, _ = _compose_web({}, monkeypatch)  # WEB_TOKEN unset: an empty variable
    assert params["token"] is None
