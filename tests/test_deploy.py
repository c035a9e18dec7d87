"""The deployment examples (deploy/compose, deploy/kubernetes) checked offline by real validators: every
Kubernetes manifest against Kubernetes' own schemas (kubernetes-validate, strict: unknown fields fail),
the compose Prometheus configuration by promtool, and every setting they pass by name is one the service reads."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from hybrid_scorer.config import Settings
from tests.conftest import require_tool

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
MANIFESTS = sorted(p for p in (DEPLOY / "kubernetes").glob("*.yaml") if p.name != "kustomization.yaml")
KUBERNETES = "1.33.0"


def _documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_each_kubernetes_manifest_is_valid_against_the_kubernetes_schemas(path: Path) -> None:
    for document in _documents(path):
        kubernetes_validate.validate(document, KUBERNETES, strict=True)


def test_the_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((DEPLOY / "kubernetes" / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == [p.name for p in MANIFESTS]


def _env_names() -> set[str]:
    """Every HYBRID_SCORER_* variable the examples set."""
    text = "".join(p.read_text() for p in [*MANIFESTS, DEPLOY / "compose" / "compose.yaml"])
    return set(re.findall(r"\bHYBRID_SCORER_[A-Z_]+\b", text))


def test_every_setting_the_examples_pass_is_one_the_service_reads() -> None:
    names = _env_names()
    assert "HYBRID_SCORER_DATABASE_URL" in names
    unknown = {n for n in names if n.removeprefix("HYBRID_SCORER_").lower() not in Settings.model_fields}
    assert not unknown, f"not settings (config.py): {unknown}"


def test_the_compose_file_wires_replicas_database_balancer_and_prometheus() -> None:
    compose = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())
    services = compose["services"]
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        assert set(service.get("depends_on", {})) <= set(services), name
    assert services["scorer"]["deploy"]["replicas"] > 1
    database_host = re.search(r"@([\w-]+):", services["scorer"]["environment"]["HYBRID_SCORER_DATABASE_URL"])
    assert database_host is not None and database_host.group(1) in services
    upstream = re.search(r"server ([\w-]+):8000", (DEPLOY / "compose" / "nginx.conf").read_text())
    assert upstream is not None and upstream.group(1) in services


def test_promtool_passes_the_compose_prometheus_configuration() -> None:
    promtool = require_tool("promtool", "prometheus")
    config = DEPLOY / "prometheus" / "prometheus-compose.yml"
    checked = subprocess.run([promtool, "check", "config", str(config)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_kubernetes_prometheus_keeps_exactly_the_scorer_pods_port() -> None:
    """Debian's promtool is built without Kubernetes discovery, so this one is checked against the
    Deployment instead: its relabelling keeps the pods the Deployment labels, on the port it names."""
    documents = [d for p in MANIFESTS for d in _documents(p)]
    config_map = next(d for d in documents if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "prometheus-config")
    scrape = yaml.safe_load(config_map["data"]["prometheus.yml"])["scrape_configs"][0]
    keep = {r["source_labels"][0]: r["regex"] for r in scrape["relabel_configs"] if r.get("action") == "keep"}
    deployment = next(d for d in documents if d["kind"] == "Deployment" and d["metadata"]["name"] == "hybrid-scorer")
    pod = deployment["spec"]["template"]
    assert keep["__meta_kubernetes_pod_label_app"] == pod["metadata"]["labels"]["app"]
    assert keep["__meta_kubernetes_pod_container_port_name"] in {
        port["name"] for port in pod["spec"]["containers"][0]["ports"]
    }
