"""docker/compose.yaml: valid against the Compose Specification schema (the copy that
check-jsonschema vendors), every file it mounts exists, and its parts agree with each
other (topics, ports, grace period, Kafka version). ``docker compose config`` runs too
where the compose plugin is installed; it needs no Docker engine."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import tomllib
import xml.etree.ElementTree as ET
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from tests.deploy.conftest import REPO, missing_tool, require_tool, tool

from btsbot_stream import config as service_config
from btsbot_stream.stream.decide.readback import changelog_topic
from btsbot_stream.stream.service import FLUSH_TIMEOUT_S

DOCKER = REPO / "docker"
COMPOSE_FILES = (DOCKER / "compose.yaml", DOCKER / "compose.gpu.yaml")
_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_]\w*)(?:(?P<sep>:?[-?])(?P<default>[^}]*))?\}"
    r"|(?P<plain>[A-Za-z_]\w*))"
)


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's variable substitution (``${VAR:-default}``, ``$$``) over a loaded file."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        name = match.group("braced") or match.group("plain")
        sep, default = match.group("sep"), match.group("default") or ""
        current = env.get(name)
        if sep and sep.endswith("?") and not current:
            raise AssertionError(f"${{{name}}} is required: {default}")
        if sep == ":-" and not current:
            return default
        if sep == "-" and current is None:
            return default
        return current or ""

    return _VARIABLE.sub(replace, value)


PASSWORD = {"GRAFANA_ADMIN_PASSWORD": "s3cret"}


def load(path: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    return interpolate(yaml.safe_load(path.read_text()), PASSWORD if env is None else env)


@pytest.fixture(scope="module")
def compose_schema() -> dict[str, Any]:
    vendored = files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    return json.loads(vendored.read_text())


def _errors(schema: dict[str, Any], document: dict[str, Any]) -> list[str]:
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(document)
    ]


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_compose_file_matches_the_compose_spec(path: Path, compose_schema: dict) -> None:
    assert _errors(compose_schema, load(path)) == []


def test_the_schema_check_can_fail(compose_schema: dict) -> None:
    broken = copy.deepcopy(load(COMPOSE_FILES[0]))
    broken["services"]["btsbot"]["depends_on"]["topic-init"]["condition"] = "service_done"
    broken["services"]["kafka"]["healthchek"] = broken["services"]["kafka"].pop("healthcheck")
    errors = "\n".join(_errors(compose_schema, broken))
    assert "'healthchek' was unexpected" in errors
    assert "services/btsbot/depends_on" in errors


def _compose_check(files_: tuple[Path, ...], env: dict[str, str]) -> subprocess.CompletedProcess:
    checker = require_tool("compose-check")
    clean = {k: v for k, v in os.environ.items() if k not in {"GRAFANA_ADMIN_PASSWORD"}}
    return subprocess.run(
        [checker, *map(str, files_)],
        capture_output=True, text=True, timeout=60, check=False, env={**clean, **env},
    )  # fmt: skip


@pytest.mark.parametrize(
    "files_", [COMPOSE_FILES[:1], COMPOSE_FILES], ids=["compose", "compose+gpu"]
)
def test_compose_loads_as_docker_compose_loads_it(files_: tuple[Path, ...]) -> None:
    """The compose-spec loader `docker compose config` is built on (tests/deploy/
    compose_check): schema, interpolation, paths, consistency. Without the Grafana
    password it refuses, naming the variable."""
    result = _compose_check(files_, {"GRAFANA_ADMIN_PASSWORD": "s3cret"})
    assert result.returncode == 0, result.stderr
    project = json.loads(result.stdout)
    btsbot = project["services"]["btsbot"]
    sources = {Path(v["source"]).resolve() for v in btsbot["volumes"]}
    assert (REPO / "models").resolve() in sources
    replay = {Path(v["source"]).resolve() for v in project["services"]["replay"]["volumes"]}
    assert replay == {(REPO / "deploy" / "demo" / "alerts").resolve()}
    for service in project["services"].values():
        for port in service.get("ports", []):
            assert port["host_ip"] == "127.0.0.1", port
    # every image of the project's own is built by the service that runs it: none is
    # pulled (there is no btsbot-stream image in any registry)
    for name, service in project["services"].items():
        if service["image"].startswith("btsbot-stream"):
            assert "build" in service, name
    assert project["services"]["decide"]["build"] == project["services"]["replay"]["build"]
    refused = _compose_check(files_, {})
    assert refused.returncode != 0 and "GRAFANA_ADMIN_PASSWORD" in refused.stderr


def _bind_sources(compose: dict[str, Any]) -> list[tuple[str, str]]:
    found = []
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source")
            if source and source.startswith("."):
                found.append((name, source))
    return found


def test_every_mounted_file_exists() -> None:
    compose = load(COMPOSE_FILES[0])
    sources = _bind_sources(compose)
    assert len(sources) >= 6
    for service, source in sources:
        assert (DOCKER / source).exists(), f"{service}: {source} (from docker/) does not exist"
    # Grafana's dashboard provider reads the folder the dashboard is mounted in
    provider = yaml.safe_load(
        (DOCKER / "grafana/provisioning/dashboards/btsbot-stream.yaml").read_text()
    )
    grafana = compose["services"]["grafana"]["volumes"]
    dashboard_target = next(v.split(":")[1] for v in grafana if "btsbot-stream.json" in v)
    assert Path(dashboard_target).parent == Path(provider["providers"][0]["options"]["path"])


def test_variables_move_the_mounts() -> None:
    compose = load(
        COMPOSE_FILES[0], {**PASSWORD, "BTSBOT_ALERTS_DIR": "/data/night", "INPUT_PARTITIONS": "8"}
    )
    assert "/data/night:/data/alerts:ro" in compose["services"]["replay"]["volumes"]
    assert "--partitions 8" in compose["services"]["topic-init"]["command"][0]


def _created_topics(compose: dict[str, Any]) -> dict[str, str]:
    """topic -> the rest of its kafka-topics.sh command, from topic-init's script."""
    script = compose["services"]["topic-init"]["command"][0].replace("\\\n", " ")
    return {m[1]: m[2] for m in re.finditer(r"--topic (\S+)(.*)", script)}


def _partitions(arguments: str) -> str:
    match = re.search(r"--partitions (\S+)", arguments)
    assert match, arguments
    return match[1]


def test_topics_configuration_and_replay_agree() -> None:
    compose = load(COMPOSE_FILES[0])
    topics = _created_topics(compose)
    settings = tomllib.loads((DOCKER / "config.toml").read_text())["kafka"]
    for key in ("output_topic", "dead_letter_topic", "compact_topic"):
        assert settings[key] in topics, f"topic-init does not create kafka.{key}"
    assert "cleanup.policy=compact" in topics[settings["compact_topic"]]
    # the decision stage's: its events, and its state's changelog (compacted, with the
    # scored topic's partition count, which Quix Streams requires)
    decide = service_config.load(DOCKER / "config.toml")
    assert decide.decide.candidates_topic in topics
    changelog = changelog_topic(decide)
    assert "cleanup.policy=compact" in topics[changelog]
    assert _partitions(topics[changelog]) == _partitions(topics[settings["output_topic"]])
    replay = compose["services"]["replay"]["command"]
    replay_topic = replay[replay.index("--topic") + 1]
    assert replay_topic in topics
    assert re.search(settings["input_pattern"], replay_topic)
    assert replay[replay.index("--bootstrap-servers") + 1] == settings["bootstrap_servers"]
    assert replay[1] == "/data/alerts"
    assert any(v.endswith(":/data/alerts:ro") for v in compose["services"]["replay"]["volumes"])


def test_service_settings_load_and_leave_the_image_its_models_dir() -> None:
    path = DOCKER / "config.toml"
    settings = service_config.load(path)
    assert settings.observability.metrics_port == 9108
    assert "models_dir" not in tomllib.loads(path.read_text())["engine"], (
        "the image sets BTSBOT_ENGINE__MODELS_DIR, which would silently win"
    )


def test_service_container() -> None:
    service = load(COMPOSE_FILES[0])["services"]["btsbot"]
    assert service["command"] == ["run", "--config", "/etc/btsbot/config.toml"]
    assert "./config.toml:/etc/btsbot/config.toml:ro" in service["volumes"]
    assert any(v.endswith(":/models:ro") for v in service["volumes"])
    assert service["read_only"] is True
    assert "127.0.0.1:9108:9108" in service["ports"]
    assert "/readyz" in " ".join(service["healthcheck"]["test"])
    grace = re.fullmatch(r"(\d+)s", service["stop_grace_period"])
    assert grace, service["stop_grace_period"]
    assert int(grace[1]) > FLUSH_TIMEOUT_S, "SIGKILL could land while the producer still flushes"


def test_decide_container() -> None:
    """The decision stage: the scorer's settings file and CPU image, a writable state
    folder on the read-only container, its metrics on loopback, scraped by Prometheus."""
    compose = load(COMPOSE_FILES[0])
    service, btsbot = compose["services"]["decide"], compose["services"]["btsbot"]
    assert service["command"] == ["decide", "--config", "/etc/btsbot/config.toml"]
    assert "./config.toml:/etc/btsbot/config.toml:ro" in service["volumes"]
    assert service["build"] == btsbot["build"] and service["image"] == btsbot["image"]
    assert "decide" not in load(COMPOSE_FILES[1])["services"], "the GPU image is the scorer's"
    assert service["read_only"] is True
    state_dir = Path(service["environment"]["BTSBOT_DECIDE__STATE_DIR"])
    assert any(state_dir.is_relative_to(tmpfs) for tmpfs in service["tmpfs"])
    assert service["depends_on"]["topic-init"]["condition"] == "service_completed_successfully"
    settings = service_config.load(DOCKER / "config.toml")
    ports = [_published(p) for p in service["ports"]]
    assert ports == [("127.0.0.1", "9109")]
    assert service["ports"][0].endswith(f":{settings.observability.metrics_port}")
    assert "/readyz" in " ".join(service["healthcheck"]["test"])
    scrape = yaml.safe_load((REPO / "deploy" / "prometheus" / "prometheus.yml").read_text())
    (job,) = [c for c in scrape["scrape_configs"] if c["job_name"] == "btsbot-stream"]
    found = {(n, sd["port"]) for sd in job["dns_sd_configs"] for n in sd["names"]}
    assert {("btsbot", settings.observability.metrics_port), ("decide", 9108)} <= found


def test_kafka_image_matches_the_local_broker_version() -> None:
    compose = load(COMPOSE_FILES[0])
    pom = ET.parse(REPO / "deploy" / "kafka" / "pom.xml").getroot()
    version = pom.findtext(
        "m:properties/m:kafka.version", namespaces={"m": "http://maven.apache.org/POM/4.0.0"}
    )
    for name in ("kafka", "topic-init"):
        assert compose["services"][name]["image"] == f"apache/kafka:{version}"


def test_one_shot_jobs() -> None:
    services = load(COMPOSE_FILES[0])["services"]
    for name in ("topic-init", "replay"):
        assert services[name]["restart"] == "no"
    assert services["replay"]["healthcheck"] == {"disable": True}
    assert services["replay"]["depends_on"]["btsbot"]["condition"] == "service_healthy"


def test_gpu_override_reserves_a_gpu() -> None:
    gpu = load(COMPOSE_FILES[1])["services"]["btsbot"]
    assert gpu["build"]["dockerfile"] == "docker/Dockerfile.cuda"
    assert gpu["environment"]["BTSBOT_ENGINE__DEVICE"] == "cuda"
    device = gpu["deploy"]["resources"]["reservations"]["devices"][0]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    # A GPU start: the CUDA image's own health check allows as long.
    period = gpu["healthcheck"]["start_period"]
    assert period == "600s" and "--start-period=600s" in (DOCKER / "Dockerfile.cuda").read_text()


# --- nothing reachable from another machine, no default password ------------------------


def _published(port: str | dict) -> tuple[str, str]:
    """(host address, host port) of a compose port entry."""
    if isinstance(port, dict):
        return port.get("host_ip", "0.0.0.0"), str(port["published"])
    parts = port.split(":")
    return (parts[0], parts[1]) if len(parts) == 3 else ("0.0.0.0", parts[0])


def test_every_published_port_is_on_loopback() -> None:
    for path in COMPOSE_FILES:
        for name, service in load(path)["services"].items():
            for port in service.get("ports", []):
                assert _published(port)[0] == "127.0.0.1", f"{path.name}: {name} {port}"
    assert _published("9108:9108")[0] == "0.0.0.0"  # the check can fail
    kafka = load(COMPOSE_FILES[0])["services"]["kafka"]["environment"]
    assert "HOST://127.0.0.1:19092" in kafka["KAFKA_ADVERTISED_LISTENERS"]


def test_no_default_admin_and_no_lifecycle_api() -> None:
    with pytest.raises(AssertionError, match="GRAFANA_ADMIN_PASSWORD"):
        load(COMPOSE_FILES[0], {})
    grafana = load(COMPOSE_FILES[0])["services"]["grafana"]["environment"]
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"] == PASSWORD["GRAFANA_ADMIN_PASSWORD"]
    if grafana.get("GF_AUTH_ANONYMOUS_ENABLED") == "true":
        assert grafana["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    prometheus = load(COMPOSE_FILES[0])["services"]["prometheus"]["command"]
    assert not any("lifecycle" in flag or "admin-api" in flag for flag in prometheus)


def test_defaults_are_the_repository_model_and_demo_sample() -> None:
    compose = load(COMPOSE_FILES[0])
    mounts = [*compose["services"]["btsbot"]["volumes"], *compose["services"]["replay"]["volumes"]]
    sources = {(DOCKER / v.split(":")[0]).resolve() for v in mounts if v.startswith(".")}
    assert (REPO / "models").resolve() in sources
    assert (REPO / "deploy" / "demo" / "alerts").resolve() in sources
    for path in COMPOSE_FILES:
        assert "shared" not in path.read_text()


def test_yaml_is_tidy() -> None:
    yamllint = tool("yamllint")
    if yamllint is None:
        missing_tool("yamllint", "install the dev extra")
    paths = [
        *DOCKER.rglob("*.yaml"),
        *(REPO / "deploy" / "k8s").rglob("*.yaml"),
        *(REPO / "deploy" / "prometheus").glob("*.y*ml"),
    ]
    result = subprocess.run(
        [str(yamllint), "-c", str(Path(__file__).with_name("yamllint.yaml")), "--strict",
         *map(str, paths)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout
