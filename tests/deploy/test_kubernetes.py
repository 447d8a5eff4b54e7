"""deploy/k8s: both overlays render, validate against the Kubernetes schemas offline
(kubernetes-validate ships them), and say what docs/DEPLOY.md promises."""

from __future__ import annotations

import pytest
import yaml
from deploy_files import DEPLOY, K8S, OVERLAYS, REPO, by_kind, kustomize

kubernetes_validate = pytest.importorskip("kubernetes_validate")

K8S_VERSION = "1.30.0"  # the oldest release the manifests target (CronJob timeZone-free, policy/v1 PDB)
OPERATOR_KINDS = {"ServiceMonitor", "PrometheusRule"}


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request) -> tuple[str, list[dict]]:
    return request.param, kustomize(request.param)


def test_every_resource_validates_against_the_kubernetes_schemas(rendered):
    _overlay, docs = rendered
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Service", "PodDisruptionBudget", "CronJob", "Job", "NetworkPolicy", "ConfigMap"} <= kinds
    assert kinds >= OPERATOR_KINDS
    for doc in docs:
        if doc["kind"] in OPERATOR_KINDS:
            continue  # CRDs: no schema shipped; checked below
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_a_field_out_of_place_is_refused():
    """The validation is real: an unknown field in a Deployment fails it."""
    gateway = yaml.safe_load_all((K8S / "base" / "gateway.yaml").read_text())
    deployment = next(d for d in gateway if d["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGett"] = {"path": "/healthz"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def _container(deployment: dict) -> dict:
    return deployment["spec"]["template"]["spec"]["containers"][0]


def test_gateway_replicas_probes_budget_and_resources(rendered):
    overlay, docs = rendered
    gateway = by_kind(docs, "Deployment")["medops-gateway"]
    assert gateway["spec"]["replicas"] >= (3 if overlay == "ha" else 2)
    container = _container(gateway)
    assert container["args"][0] == "gateway" and "--seed" in container["args"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["requests"]["cpu"] and container["resources"]["requests"]["memory"]
    budget = by_kind(docs, "PodDisruptionBudget")["medops-gateway"]
    assert budget["spec"]["selector"]["matchLabels"] == gateway["spec"]["selector"]["matchLabels"]
    assert 1 <= budget["spec"]["minAvailable"] < gateway["spec"]["replicas"]
    dashboard = _container(by_kind(docs, "Deployment")["medops-dashboard"])
    assert dashboard["args"][0] == "serve" and dashboard["readinessProbe"]["httpGet"]["path"] == "/healthz"


def test_pods_run_as_the_image_user_without_privileges(rendered):
    _overlay, docs = rendered
    pods = [d["spec"]["template"]["spec"] for d in docs if d["kind"] in ("Deployment", "Job")]
    pods += [d["spec"]["jobTemplate"]["spec"]["template"]["spec"] for d in docs if d["kind"] == "CronJob"]
    assert len(pods) == 5
    for pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
        for container in pod["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_monitor_cronjobs_never_overlap_and_the_migration_is_a_job(rendered):
    _overlay, docs = rendered
    cronjobs = by_kind(docs, "CronJob")
    commands = {name: _container(c["spec"]["jobTemplate"])["args"][:2] for name, c in cronjobs.items()}
    assert sorted(commands.values()) == [["monitor", "check"], ["monitor", "grade"]]
    assert all(c["spec"]["concurrencyPolicy"] == "Forbid" for c in cronjobs.values())
    migrate = _container(by_kind(docs, "Job")["medops-migrate"])
    assert migrate["args"][:2] == ["python", "-c"] and "open_store" in migrate["args"][2]


def test_secrets_are_references_and_config_comes_from_configmaps(rendered):
    _overlay, docs = rendered
    assert "Secret" not in {d["kind"] for d in docs}, "the site creates medops-secrets; none is shipped"
    config = next(d for n, d in by_kind(docs, "ConfigMap").items() if n.startswith("medops-config"))
    assert not any(word in key for key in config["data"] for word in ("KEY", "PASSWORD", "TOKEN", "SECRET"))
    assert "@" in config["data"]["MEDOPS_DB"] and ":" not in config["data"]["MEDOPS_DB"].split("//")[1].split("@")[0]
    pods = [d["spec"]["template"]["spec"] for d in docs if d["kind"] in ("Deployment", "Job")]
    pods += [d["spec"]["jobTemplate"]["spec"]["template"]["spec"] for d in docs if d["kind"] == "CronJob"]
    for pod in pods:
        container = pod["containers"][0]
        env = {e["name"]: e for e in container["env"]}
        assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "medops-secrets"
        assert all("value" not in e for e in env.values()), "no literal value in env: secrets by reference"
        refs = [r["configMapRef"]["name"] for r in container["envFrom"]]
        assert refs and all(r in by_kind(docs, "ConfigMap") for r in refs), "kustomize rewrote the hashed names"


def test_network_policies_fence_model_servers_and_postgresql(rendered):
    _overlay, docs = rendered
    policies = by_kind(docs, "NetworkPolicy")
    gateway_labels = by_kind(docs, "Deployment")["medops-gateway"]["spec"]["template"]["metadata"]["labels"]
    models = policies["model-servers-from-gateway-only"]["spec"]
    [rule] = models["ingress"]
    [peer] = rule["from"]
    assert peer["podSelector"]["matchLabels"].items() <= gateway_labels.items()
    assert "namespaceSelector" not in peer and "ipBlock" not in peer
    dashboard_labels = by_kind(docs, "Deployment")["medops-dashboard"]["spec"]["template"]["metadata"]["labels"]
    assert not peer["podSelector"]["matchLabels"].items() <= dashboard_labels.items(), "the dashboard is kept out"
    database = policies["postgresql-from-medops-only"]["spec"]
    [rule] = database["ingress"]
    [peer] = rule["from"]
    assert peer["podSelector"]["matchLabels"] == {"app.kubernetes.io/part-of": "medops"}
    assert rule["ports"] == [{"protocol": "TCP", "port": 5432}]
    every_pod_label = [d["spec"]["template"]["metadata"]["labels"] for d in docs if d["kind"] in ("Deployment", "Job")]
    every_pod_label += [d["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
                        for d in docs if d["kind"] == "CronJob"]
    assert all(labels.get("app.kubernetes.io/part-of") == "medops" for labels in every_pod_label)


def test_service_monitor_scrapes_the_gateway_service(rendered):
    """ServiceMonitor is a CRD (no schema offline): checked for what makes it work."""
    _overlay, docs = rendered
    [monitor] = by_kind(docs, "ServiceMonitor").values()
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    service = by_kind(docs, "Service")["medops-gateway"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]} and endpoint["path"] == "/metrics"


def test_prometheus_rule_is_the_rules_file(rendered):
    _overlay, docs = rendered
    [rule] = by_kind(docs, "PrometheusRule").values()
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["spec"] == yaml.safe_load((DEPLOY / "prometheus" / "medops-rules.yml").read_text())
    for group in rule["spec"]["groups"]:
        assert group["name"] and group["rules"]
        for r in group["rules"]:
            assert set(r) <= {"alert", "record", "expr", "for", "labels", "annotations"}
            assert ("alert" in r) != ("record" in r) and r["expr"]


def test_the_monitor_policy_is_the_documented_one():
    assert (K8S / "base" / "monitor.yaml").read_text() == (REPO / "docs" / "monitor.yaml").read_text()
