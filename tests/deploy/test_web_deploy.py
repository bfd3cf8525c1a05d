"""The web page's deployment pieces: the Kubernetes component (Deployment + Service)
validates against the Kubernetes schemas and agrees with itself and the CLI; the compose
override publishes it on 127.0.0.1 only. (Rendering with an overlay is the Kubernetes
tests' job once the component is listed there.)"""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import yaml
from kubernetes_validate.utils import latest_version

from btsbot_stream.cli import main

REPO = Path(__file__).resolve().parents[2]
COMPONENT = REPO / "deploy" / "k8s" / "components" / "web"


def _manifests() -> dict[str, dict]:
    kustomization = yaml.safe_load((COMPONENT / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Component"
    loaded = [yaml.safe_load((COMPONENT / name).read_text()) for name in kustomization["resources"]]
    return {m["kind"]: m for m in loaded}


def test_component_validates_and_agrees() -> None:
    manifests = _manifests()
    assert set(manifests) == {"Deployment", "Service"}
    for manifest in manifests.values():
        for version in ("1.30", latest_version()):
            kubernetes_validate.validate(manifest, version, strict=True)
    deployment, service = manifests["Deployment"], manifests["Service"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    # Its own name label: the scorer's Service, PDB and NetworkPolicy never select it.
    assert labels["app.kubernetes.io/name"] == "btsbot-stream-web"
    assert service["spec"]["type"] == "ClusterIP"
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    assert args[0] == "web" and args[args.index("--port") + 1] == "8080"
    assert container["ports"][0]["containerPort"] == 8080
    assert service["spec"]["ports"][0]["targetPort"] == container["ports"][0]["name"]
    # every environment variable it sets is one the web command reads
    web = main.commands["web"]
    read = {p.envvar for p in web.params if p.envvar} | {"MPLCONFIGDIR"}
    for env in container["env"]:
        assert env["name"] in read or env["name"].startswith("BTSBOT_KAFKA__PROPERTIES__")
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_compose_override_serves_on_loopback_only() -> None:
    compose = yaml.safe_load((REPO / "docker" / "compose.web.yaml").read_text())
    web = compose["services"]["web"]
    assert web["command"][0] == "web"
    assert all(port.startswith("127.0.0.1:") for port in web["ports"])
    assert web["read_only"] is True
