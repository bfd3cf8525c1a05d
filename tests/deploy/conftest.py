"""Fixtures for the deployment checks: rendered Kubernetes manifests, the compose file,
the service's exported metrics. Nothing here needs a network or a container engine."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
OVERLAYS = ("cpu", "gpu")


def tool(name: str) -> str | None:
    """An executable from the test venv (where ``make test`` installs tools) or PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(name)


def missing_tool(what: str, how: str) -> None:
    """Skip on a developer machine; fail in CI, where the test command installs it."""
    message = f"{what} not found: {how}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


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
        missing_tool("kustomize", "`make test` builds it from sigs.k8s.io/kustomize/kustomize/v5")
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


def one(manifests: list[dict], kind: str) -> dict:
    found = [m for m in manifests if m["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


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
