"""deploy/compose.yaml and what it mounts (nginx, Prometheus, the rules, Grafana), the systemd
units and the image's entry point: parsed and checked offline."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from deploy_files import DEPLOY, REPO, tool

from medops.monitor.metrics import GatewayMetrics

COMPOSE = DEPLOY / "compose.yaml"
SECRET_WORDS = ("PASSWORD", "KEY", "TOKEN", "SECRET")
SERVER_SERVICES = {"postgres", "gateway-1", "gateway-2", "proxy", "dashboard", "prometheus", "grafana"}
JOB_SERVICES = {"migrate", "monitor-grade", "monitor-check"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_services_and_healthchecks(compose):
    services = compose["services"]
    assert set(services) == SERVER_SERVICES | JOB_SERVICES
    for name in SERVER_SERVICES:
        check = services[name]["healthcheck"]
        assert check["test"][0] == "CMD" and not check.get("disable"), name
    for name in ("gateway-1", "gateway-2", "dashboard"):
        [url] = re.findall(r"http://127\.0\.0\.1:\d+/healthz", " ".join(services[name]["healthcheck"]["test"]))
        port = "8080" if name.startswith("gateway") else "8765"
        assert f":{port}/" in url
    for name in JOB_SERVICES:
        assert services[name]["healthcheck"] == {"disable": True}
    gateways = [services[f"gateway-{i}"]["command"] for i in (1, 2)]
    assert gateways[0] == gateways[1] and "--seed 0" in gateways[0], "same --seed: same A/B arm on both"
    assert services["monitor-grade"]["command"].split()[:2] == ["monitor", "grade"]
    assert services["monitor-check"]["command"][:2] == ["monitor", "check"]
    assert "--every" in services["monitor-grade"]["command"] and "--every" in services["monitor-check"]["command"]
    assert "pgdata:/var/lib/postgresql/data" in services["postgres"]["volumes"] and "pgdata" in compose["volumes"]
    for name in ("gateway-1", "gateway-2", "dashboard", "monitor-grade", "monitor-check"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}


def _literal_secrets(environment: dict) -> list[str]:
    return [
        k for k, v in environment.items()
        if any(w in k for w in SECRET_WORDS) and not k.endswith("_FILE") and not str(v).startswith("${")
    ]


def test_compose_has_no_secret_inline(compose):
    text = COMPOSE.read_text()
    for name, service in compose["services"].items():
        environment = service.get("environment", {})
        assert not _literal_secrets(environment), name
        for value in environment.values():
            assert not re.search(r"://[^/@:\s]+:[^@/\s]+@", str(value)), f"{name}: a password in a URL"
        for path in [v for v in environment.values() if str(v).startswith("/run/secrets/")]:
            assert Path(path).name in service["secrets"], f"{name}: {path} is not one of its secrets"
    for secret in compose["secrets"].values():
        assert set(secret) == {"file"} and secret["file"].startswith("./secrets/")
    assert "secrets/" in (DEPLOY / ".gitignore").read_text().split()
    assert "medops.env" in (DEPLOY / ".gitignore").read_text().split()
    # the check itself bites: a password written into the file would be found
    assert _literal_secrets({"POSTGRES_PASSWORD": "hunter2"}) == ["POSTGRES_PASSWORD"]
    assert "sk-" not in text


def test_proxy_spreads_over_both_gateways_and_streams():
    conf = (DEPLOY / "compose" / "nginx.conf").read_text()
    upstream = re.search(r"upstream medops_gateways \{(.*?)\}", conf, re.S).group(1)
    assert re.findall(r"server (gateway-\d):8080", upstream) == ["gateway-1", "gateway-2"]
    assert "proxy_buffering off;" in conf


def test_prometheus_scrapes_every_replica(compose):
    config = yaml.safe_load((DEPLOY / "compose" / "prometheus.yml").read_text())
    [job] = config["scrape_configs"]
    targets = [t for c in job["static_configs"] for t in c["targets"]]
    gateways = sorted(n for n in compose["services"] if n.startswith("gateway-"))
    assert targets == [f"{n}:8080" for n in gateways] and job["metrics_path"] == "/metrics"
    promtool = tool("promtool")
    done = subprocess.run([promtool, "check", "config", "--syntax-only", str(DEPLOY / "compose" / "prometheus.yml")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_checks_and_unit_tests_the_rules():
    promtool = tool("promtool")
    rules = DEPLOY / "prometheus"
    done = subprocess.run([promtool, "check", "rules", str(rules / "medops-rules.yml")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    tested = subprocess.run([promtool, "test", "rules", "medops-rules.test.yml"], cwd=rules,
                            capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "MedopsRecordsDropped" in (rules / "medops-rules.yml").read_text()


def _exported() -> tuple[set[str], set[str]]:
    """Every series name and label name the gateway's registry can export (medops.monitor.metrics)."""
    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
                "gauge": ("",)}
    names: set[str] = set()
    labels: set[str] = {"le", "instance", "job"}  # Prometheus's own: histogram buckets, scrape targets
    for collector in vars(GatewayMetrics()).values():
        describe = getattr(collector, "describe", None)
        if describe is None:
            continue
        for family in describe():
            names.update(family.name + s for s in suffixes[family.type])
        labels.update(getattr(collector, "_labelnames", ()))
    return names, labels


def _queries() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "medops.json").read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p["targets"]]


PROMQL_WORDS = {"sum", "rate", "increase", "histogram_quantile", "by", "max", "min", "avg", "without", "count"}


def test_grafana_dashboard_asks_only_for_what_the_gateway_exports():
    names, labels = _exported()
    assert "medops_gateway_requests_total" in names and "medops_online_score" in names
    asked: set[str] = set()
    for expr in _queries():
        asked.update(n for n in re.findall(r"\b(medops_[a-z_]+)\b", expr))
        for group in re.findall(r"by \(([^)]*)\)", expr):
            assert {g.strip() for g in group.split(",")} <= labels, expr
        for selector in re.findall(r"medops_[a-z_]+\{([^}]*)\}", expr):
            assert {m.split("=")[0].strip() for m in selector.split(",")} <= labels, expr
    assert asked <= names, f"not exported by the gateway: {sorted(asked - names)}"
    wanted = {"medops_gateway_requests_total", "medops_gateway_request_duration_seconds_bucket",
              "medops_gateway_time_to_first_token_seconds_bucket", "medops_gateway_tokens_total",
              "medops_online_score", "medops_gateway_record_dropped_total"}
    assert wanted <= asked, "requests, latency, first token, tokens, online scores, dropped records"
    assert any(expr.startswith("ALERTS{") for expr in _queries()), "a panel of firing alerts"


def test_alert_rules_ask_only_for_what_the_gateway_exports():
    names, labels = _exported()
    rules = yaml.safe_load((DEPLOY / "prometheus" / "medops-rules.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            asked = set(re.findall(r"\b(medops_[a-z_]+)\b", rule["expr"]))
            assert asked <= names, rule
            for group in re.findall(r"by \(([^)]*)\)", rule["expr"]):
                assert {g.strip() for g in group.split(",")} <= labels, rule


def test_grafana_provisioning_points_at_prometheus_and_the_dashboard(compose):
    grafana = DEPLOY / "grafana"
    [source] = yaml.safe_load((grafana / "provisioning" / "datasources" / "prometheus.yaml").read_text())["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    dashboard = json.loads((grafana / "dashboards" / "medops.json").read_text())
    assert {p["datasource"]["uid"] for p in dashboard["panels"]} == {source["uid"]}
    [provider] = yaml.safe_load((grafana / "provisioning" / "dashboards" / "medops.yaml").read_text())["providers"]
    mounted = dict(v.split(":")[:2][::-1] for v in compose["services"]["grafana"]["volumes"] if v.startswith("./"))
    assert mounted[provider["options"]["path"]] == "./grafana/dashboards"


def test_systemd_units_verify():
    analyze = tool("systemd-analyze")
    units = sorted(str(p) for p in (DEPLOY / "systemd").glob("medops-*.*"))
    assert len(units) == 5
    done = subprocess.run([analyze, "verify", "--man=no", *units], capture_output=True, text=True)
    problems = [line for line in done.stderr.splitlines()
                if "is not executable" not in line and "/opt/medops/" not in line and line.strip()]
    assert not problems, problems
    gateway = (DEPLOY / "systemd" / "medops-gateway@.service").read_text()
    assert "--port %i" in gateway and "Restart=always" in gateway and "EnvironmentFile=/etc/medops/env" in gateway


def _entrypoint(tmp_path: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """deploy/entrypoint with a stand-in `medops` first on PATH that prints its arguments and environment."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "medops"
    fake.write_text('#!/bin/sh\necho "args: $*"\nenv\n')
    fake.chmod(0o755)
    return subprocess.run([str(DEPLOY / "entrypoint"), *args], capture_output=True, text=True,
                          env={"PATH": f"{bin_dir}:/usr/bin:/bin", **env})


def test_entrypoint_reads_secrets_from_files(tmp_path):
    secret = tmp_path / "postgres_password"
    secret.write_text("s3cret-value\n")
    done = _entrypoint(tmp_path, "gateway", "--port", "8080", env={"PGPASSWORD_FILE": str(secret)})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "args: gateway --port 8080"
    assert "PGPASSWORD=s3cret-value" in lines and not any(line.startswith("PGPASSWORD_FILE=") for line in lines)
    missing = _entrypoint(tmp_path, "serve", env={"MEDOPS_AUDIT_KEY_FILE": str(tmp_path / "absent")})
    assert missing.returncode == 2 and "MEDOPS_AUDIT_KEY_FILE" in missing.stderr
    assert "args:" not in missing.stdout, "nothing started without its secret"


def test_dashboard_answers_healthz_without_signing_in(tmp_path):
    from fastapi.testclient import TestClient

    from medops.web.app import create_app

    client = TestClient(create_app(str(tmp_path / "medops.db")), follow_redirects=False)
    answer = client.get("/healthz")
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}
    assert client.get("/runs").status_code == 303, "everything else still needs a sign-in"


def test_containerfile_shape():
    text = (DEPLOY / "Containerfile").read_text()
    stages = re.findall(r"^FROM (\S+)(?: AS (\w+))?", text, re.M)
    assert stages[0] == ("${BASE}", "runtime") and len(stages) == 3 and stages[-1] == ("runtime", "")
    assert re.search(r"^ARG BASE=", text, re.M)
    final = text[text.rindex("\nFROM "):]
    assert "USER 10001" in final and "HEALTHCHECK" in final and "/healthz" in final
    assert "org.opencontainers.image.version" in final and "org.opencontainers.image.revision" in final
    assert not re.search(r"\b(gcc|build-essential|g\+\+|make)\b", text.split("# --- final")[0] + final)
    assert "torch" not in final


def test_install_offline_refuses_a_folder_that_is_not_a_bundle(tmp_path):
    done = subprocess.run([str(REPO / "scripts" / "install"), "--offline", str(tmp_path)],
                          capture_output=True, text=True, env={**os.environ, "MEDOPS_VENV": str(tmp_path / "v")})
    assert done.returncode == 2 and "SHA256SUMS" in done.stderr and not (tmp_path / "v").exists()
