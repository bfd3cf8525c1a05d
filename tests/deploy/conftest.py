"""Fixtures for the deployment checks: rendered Kubernetes manifests, the compose file,
the service's exported metrics. Nothing here needs a network or a container engine."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

if TYPE_CHECKING:
    from btsbot_stream.cli.follow_options import Connection
    from btsbot_stream.config import ServiceSettings

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
OVERLAYS = ("cpu", "gpu")


def tool(name: str) -> str | None:
    """An executable from the test venv (where ``make test`` installs tools) or PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(name)


def tools_required() -> bool:
    """In CI (``CI`` set, or ``BTSBOT_REQUIRE_SHARED=1`` as .ci/run sets) ``make test``
    has installed every tool: one missing is a failure, never a skip."""
    return bool(os.environ.get("CI")) or os.environ.get("BTSBOT_REQUIRE_SHARED") == "1"


def missing_tool(what: str, how: str) -> None:
    """Skip on a developer machine; fail in CI, where the test command installs it."""
    message = f"{what} not found: {how}"
    if tools_required():
        pytest.fail(message)
    pytest.skip(message)


def require_tool(name: str) -> str:
    """A tool ``make tools`` installs into the venv (or on PATH)."""
    found = tool(name)
    if found is None:
        missing_tool(name, "`make tools` (part of `make test`) installs it")
        raise AssertionError  # unreachable: missing_tool skips or fails
    return found


def crd_file(name: str) -> Path:
    """An upstream CRD file that ``make tools`` copied from the KEDA / Prometheus
    Operator Go modules into ``.venv/crds``."""
    path = Path(sys.executable).parent.parent / "crds" / name
    if not path.is_file():
        missing_tool(f"CRD {name}", "`make tools` copies the upstream CRDs into .venv/crds")
    return path


def kustomize_command() -> list[str] | None:
    """``kustomize build`` or ``kubectl kustomize``, whichever exists."""
    if found := tool("kustomize"):
        return [found, "build"]
    if found := tool("kubectl"):
        return [found, "kustomize"]
    return None


def render(directory: Path) -> list[dict]:
    """The manifests ``kustomize build directory`` prints."""
    command = kustomize_command()
    if command is None:
        missing_tool("kustomize", "`make tools` builds it from sigs.k8s.io/kustomize/kustomize/v5")
        raise AssertionError  # unreachable: missing_tool skips or fails
    result = subprocess.run(
        [*command, str(directory)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"kustomize build {directory} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="session", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[dict]]:
    """(overlay name, its rendered manifests)."""
    return request.param, render(K8S / "overlays" / request.param)


# The Deployments of the stages (deploy/k8s/base, deploy/k8s/components/decide and web):
# each stage's Service, PodDisruptionBudget... carry its Deployment's name.
SCORER = "btsbot-stream"
DECIDE = "btsbot-stream-decide"
WEB = "btsbot-stream-web"


def one(manifests: list[dict], kind: str, name: str | None = None) -> dict:
    """The manifest of that kind (and name, where a kind has one per stage)."""
    found = [
        m
        for m in manifests
        if m["kind"] == kind and (name is None or m["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def deployments(manifests: list[dict]) -> dict[str, dict]:
    """Every Deployment by name: the stages."""
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == "Deployment"}


def service_config_toml(manifests: list[dict]) -> str:
    """The service's config.toml, from the ConfigMap that holds it."""
    (text,) = [m["data"]["config.toml"] for m in manifests if "config.toml" in m.get("data", {})]
    return text


def pod_settings(
    manifests: list[dict],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    deployment: str = SCORER,
) -> ServiceSettings:
    """The settings a stage's pod runs with: the ConfigMap's TOML plus the container's
    environment (secrets as "from-the-secret", the CPU request for resourceFieldRef),
    loaded by the service's own settings model. No setting may have both sources."""
    from btsbot_stream import config as service_config

    c = container(one(manifests, "Deployment", deployment))
    text = service_config_toml(manifests)
    file_keys = {
        f"BTSBOT_{section.upper()}__{key.upper()}"
        for section, table in tomllib.loads(text).items()
        for key in table
    }
    for name in pod_environment(c, monkeypatch):
        assert name.upper() not in file_keys, f"{name} is also in config.toml"
    path = tmp_path / "config.toml"
    path.write_text(text)
    return service_config.load(path)


def pod_environment(c: dict, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Set the container's environment in this process, as the pod sees it (secrets as
    "from-the-secret", the CPU request for resourceFieldRef), and nothing else of ours:
    every other BTSBOT_* variable is removed."""
    for variable in list(os.environ):
        if variable.startswith("BTSBOT_"):
            monkeypatch.delenv(variable)
    env = {}
    for item in c.get("env", []):
        source = item.get("valueFrom", {})
        if "value" in item:
            env[item["name"]] = item["value"]
        elif "resourceFieldRef" in source:
            env[item["name"]] = str(c["resources"]["requests"]["cpu"])
        elif "secretKeyRef" in source:
            env[item["name"]] = "from-the-secret"
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def web_command(
    args: list[str], files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, Any], Connection]:
    """What ``btsbot-stream web`` makes of a container's arguments under the environment
    set now (``pod_environment``): its parsed options and its Kafka connection, as the
    command resolves them. ``files`` maps the container's paths (the mounted config) to
    files here."""
    from btsbot_stream.cli import main
    from btsbot_stream.cli.follow_options import connection_options

    assert args[0] == "web", args
    local = [str(files.get(a, a)) for a in args[1:]]
    params = main.commands["web"].make_context("web", local).params
    names = ("config_path", "properties", "bootstrap_servers", "topic", "candidates_topic")
    connection: Connection = connection_options(lambda connection: connection)(
        **{name: params[name] for name in names}
    )
    return params, connection


def container(deployment: dict, name: str = "btsbot-stream") -> dict:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == name)


@pytest.fixture(scope="session")
def exposition() -> str:
    """What the service's /metrics shows right after start: every metric family of
    ``btsbot_stream.metrics`` (no children yet) plus the process/platform collectors."""
    from prometheus_client import REGISTRY, generate_latest

    import btsbot_stream.metrics  # noqa: F401  (registers the metrics)

    return generate_latest(REGISTRY).decode()
