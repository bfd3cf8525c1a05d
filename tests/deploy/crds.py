"""Validation of custom resources against the upstream CRDs (KEDA, Prometheus Operator)
that ``make tools`` copies from their Go modules: the CRD's own OpenAPI v3 schema, made
as strict as ``kubectl apply --validate=strict`` (an unknown field is an error)."""

from __future__ import annotations

import functools
from typing import Any

import jsonschema
import yaml
from tests.deploy.conftest import crd_file

# (apiVersion, kind) -> the upstream CRD file that defines it.
CRD_FILES = {
    ("keda.sh/v1alpha1", "ScaledObject"): "keda.sh_scaledobjects.yaml",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): "keda.sh_triggerauthentications.yaml",
    ("monitoring.coreos.com/v1", "PodMonitor"): "monitoring.coreos.com_podmonitors.yaml",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "monitoring.coreos.com_prometheusrules.yaml",
}


def _strict(schema: Any) -> Any:
    """OpenAPI v3 (Kubernetes flavour) to JSON Schema: objects with listed properties
    accept no others unless the CRD says so, and ``nullable`` admits null."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _strict(v) for k, v in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"]
    return out


@functools.cache
def crd_schema(api_version: str, kind: str) -> dict[str, Any]:
    """The strict schema of one custom resource kind, from its upstream CRD."""
    crd = yaml.safe_load(crd_file(CRD_FILES[(api_version, kind)]).read_text())
    group, _, version = api_version.partition("/")
    assert crd["spec"]["group"] == group and crd["spec"]["names"]["kind"] == kind
    (served,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    schema = _strict(served["schema"]["openAPIV3Schema"])
    # The API server checks metadata as ObjectMeta; these manifests set names and labels.
    schema["properties"]["metadata"] = {"type": "object"}
    schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "spec"})
    return schema


def crd_errors(manifest: dict[str, Any]) -> list[str] | None:
    """Schema errors of a custom resource, or None when it is no kind of CRD_FILES."""
    key = (manifest.get("apiVersion"), manifest.get("kind"))
    if key not in CRD_FILES:
        return None
    validator = jsonschema.Draft7Validator(crd_schema(*key))  # type: ignore[arg-type]
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(manifest)
    ]
