"""deploy/k8s/components and what the overlays deploy: the monitoring copies are
current, the topics the Job (or Strimzi) creates are the ones the service writes, the
SASL/TLS and private-CA components reach both the service and KEDA, the NetworkPolicy
lets through what the pods need, and each overlay's image is a documented build that
carries the model its configuration names."""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import tomllib
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from tests.deploy.conftest import (
    DECIDE,
    K8S,
    REPO,
    SCORER,
    WEB,
    container,
    deployments,
    one,
    pod_environment,
    pod_settings,
    render,
    service_config_toml,
    web_command,
)
from tests.deploy.test_k8s import validation_errors

from btsbot_stream.stream.decide.readback import changelog_topic

COMPONENTS = K8S / "components"
POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}


def _generator() -> ModuleType:
    path = COMPONENTS / "monitoring" / "generate.py"
    spec = importlib.util.spec_from_file_location("monitoring_generate", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_monitoring_copies_are_current() -> None:
    for path, text in _generator().outputs().items():
        assert path.read_text() == text, f"{path.name} is stale: run `make k8s-monitoring`"


def test_monitoring_component(overlay: tuple[str, list[dict]]) -> None:
    _, manifests = overlay
    rule = one(manifests, "PrometheusRule")
    source = yaml.safe_load((REPO / "deploy/prometheus/rules.yaml").read_text())
    assert rule["spec"]["groups"] == source["groups"]
    (dashboard,) = [m for m in manifests if "btsbot-stream.json" in m.get("data", {})]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert (
        dashboard["data"]["btsbot-stream.json"]
        == (REPO / "deploy/grafana/btsbot-stream.json").read_text()
    )


def _everything(tmp_path: Path, *components: str) -> list[dict]:
    """The cpu overlay plus more components, rendered from a kustomization in tmp_path."""
    overlay = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(K8S / "overlays" / "cpu", tmp_path)],
        "components": [os.path.relpath(COMPONENTS / c, tmp_path) for c in components],
    }
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(overlay))
    return render(tmp_path)


def _overlay_components(overlay: str) -> list[str]:
    text = (K8S / "overlays" / overlay / "kustomization.yaml").read_text()
    return [Path(c).name for c in yaml.safe_load(text).get("components", [])]


def test_every_component_renders_and_validates(tmp_path: Path) -> None:
    used = set(_overlay_components("cpu"))  # already in the overlay
    assert {"monitoring", "topics", "network-policy", "decide", "web"} <= used
    extra = sorted(p.name for p in COMPONENTS.iterdir() if p.is_dir())
    manifests = _everything(tmp_path, *(c for c in extra if c not in used))
    for manifest in manifests:
        assert validation_errors(manifest) == [], manifest["kind"]
    assert {"KafkaTopic", "Job", "NetworkPolicy", "PrometheusRule"} <= {
        m["kind"] for m in manifests
    }


def _job_topics(job: dict) -> dict[str, str]:
    """topic -> the rest of its create command, from the Job's script."""
    script = container(job, "create-topics")["args"][0].replace("\\\n", " ")
    return {m[1]: m[2] for m in re.finditer(r"--topic (\S+)(.*)", script)}


def _partitions(arguments: str) -> str:
    match = re.search(r"--partitions (\S+)", arguments)
    assert match, arguments
    return match[1]


def test_topics_are_the_ones_the_stages_write(
    overlay: tuple[str, list[dict]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The topics Job and the Strimzi topics create what the scorer and the decision
    stage write, as the pods' own settings name them: the decision stage's changelog
    compacted, with the scored topic's partition count (Quix Streams refuses another)."""
    _, manifests = overlay
    kafka = tomllib.loads(service_config_toml(manifests))["kafka"]
    decide = pod_settings(manifests, monkeypatch, tmp_path, DECIDE)
    changelog = changelog_topic(decide)
    assert decide.kafka.output_topic == kafka["output_topic"]
    wanted = {
        kafka["output_topic"],
        kafka["dead_letter_topic"],
        decide.decide.candidates_topic,
        changelog,
    }
    job = one(manifests, "Job")
    topics = _job_topics(job)
    assert wanted <= set(topics)
    assert "cleanup.policy=compact" in topics["ztf_btsbot_scores_compact"]
    assert "cleanup.policy=compact" in topics[changelog]
    assert _partitions(topics[changelog]) == _partitions(topics[kafka["output_topic"]])
    strimzi = [m for m in _everything(tmp_path, "strimzi-topics") if m["kind"] == "KafkaTopic"]
    by_name = {t["spec"]["topicName"]: t["spec"] for t in strimzi}
    assert set(by_name) == set(topics)
    assert by_name["ztf_btsbot_scores_compact"]["config"] == {"cleanup.policy": "compact"}
    assert by_name[changelog]["config"] == {"cleanup.policy": "compact"}
    assert by_name[changelog]["partitions"] == by_name[kafka["output_topic"]]["partitions"]
    for topic in strimzi:
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", topic["metadata"]["name"])
        assert "strimzi.io/cluster" in topic["metadata"]["labels"]


def test_topic_job_reaches_the_same_kafka(overlay: tuple[str, list[dict]]) -> None:
    _, manifests = overlay
    job = one(manifests, "Job")
    env = {e["name"]: e.get("value") for e in container(job, "create-topics")["env"]}
    for deployment in deployments(manifests).values():
        stage = {e["name"]: e.get("value") for e in container(deployment)["env"]}
        assert env["BOOTSTRAP_SERVERS"] == stage["BTSBOT_KAFKA__BOOTSTRAP_SERVERS"]
    import xml.etree.ElementTree as ET

    pom = ET.parse(REPO / "deploy" / "kafka" / "pom.xml").getroot()
    version = pom.findtext("m:properties/m:kafka.version", namespaces=POM_NS)
    assert container(job, "create-topics")["image"] == f"apache/kafka:{version}"
    script = container(job, "create-topics")["args"][0]
    assert "--if-not-exists" in script
    shlex.split(script.replace("$", ""))  # balanced quotes


def test_network_policy_lets_through_what_the_pods_need(overlay: tuple[str, list[dict]]):
    """Every stage's pods (the scorer, the decision stage, the web): Kafka and DNS out,
    Prometheus in on the metrics port."""
    _, manifests = overlay
    policy = one(manifests, "NetworkPolicy", "btsbot-stream")["spec"]
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    (ingress,) = policy["ingress"]
    assert [p["port"] for p in ingress["ports"]] == ["metrics"]
    egress = {
        rule["to"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]: rule
        for rule in policy["egress"]
    }
    stages = deployments(manifests)
    assert set(stages) == {SCORER, DECIDE, WEB}
    for deployment in stages.values():
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert policy["podSelector"]["matchLabels"].items() <= pod_labels.items()
        env = {e["name"]: e.get("value") for e in container(deployment)["env"]}
        host, _, port = env["BTSBOT_KAFKA__BOOTSTRAP_SERVERS"].rpartition(":")
        kafka_namespace = host.split(".")[1]  # <service>.<namespace>.svc
        kafka_port = egress[kafka_namespace]["ports"][0]
        assert kafka_port["port"] <= int(port) <= kafka_port.get("endPort", kafka_port["port"])
    assert {(p["port"], p["protocol"]) for p in egress["kube-system"]["ports"]} == {
        (53, "UDP"),
        (53, "TCP"),
    }


def test_sasl_ssl_and_private_ca_reach_the_service_and_keda(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In every stage's pods (the components patch each Deployment of the name label)."""
    manifests = _everything(tmp_path, "kafka-sasl-ssl", "kafka-private-ca")
    stages = deployments(manifests)
    assert set(stages) == {SCORER, DECIDE, WEB}
    for name, deployment in stages.items():
        if name == WEB:  # the web's own command reads the properties
            pod_environment(container(deployment), monkeypatch)
            config = tmp_path / "config.toml"
            config.write_text(service_config_toml(manifests))
            args = container(deployment)["args"]
            _, connection = web_command(args, {"/etc/btsbot/config.toml": config}, monkeypatch)
            properties = connection.properties
        else:
            properties = pod_settings(
                manifests, monkeypatch, tmp_path, name
            ).kafka.client_properties()
        assert properties["security.protocol"] == "SASL_SSL", name
        assert properties["sasl.mechanism"] == "SCRAM-SHA-512"
        mounts = {m["mountPath"]: m for m in container(deployment)["volumeMounts"]}
        ca_dir = str(Path(properties["ssl.ca.location"]).parent)
        assert mounts[ca_dir]["readOnly"] is True
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        ca_secret = volumes[mounts[ca_dir]["name"]]["secret"]
        assert ca_secret["items"] == [
            {"key": "ca.crt", "path": Path(properties["ssl.ca.location"]).name}
        ]
    (trigger,) = one(manifests, "ScaledObject")["spec"]["triggers"]
    auth = one(manifests, "TriggerAuthentication")
    assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]
    assert trigger["metadata"]["sasl"] == "scram_sha512" and trigger["metadata"]["tls"] == "enable"
    refs = {r["parameter"]: r for r in auth["spec"]["secretTargetRef"]}
    assert refs["ca"]["name"] == ca_secret["secretName"] and refs["ca"]["key"] == "ca.crt"
    assert {"username", "password"} <= set(refs)
