"""One description of a deployment target (models.targets), read by the gateway's flags, canary
rounds (``medops monitor canary`` and the dashboard's), and monitor policies."""

from __future__ import annotations

import pytest

from medops.errors import UserError
from medops.models.targets import ARMS, Target, arm_name, canary_target, gateway_targets


def test_a_target_holds_an_endpoint_a_model_and_the_name_of_its_key(monkeypatch):
    target = canary_target("openai:our-model", "http://vllm.internal:8000/v1/", "HOSPITAL_KEY")
    assert (target.role, target.arm, target.endpoint_key) == ("canary", None, "http://vllm.internal:8000/v1")
    spec = target.spec()
    assert (str(spec), spec.base_url, spec.api_key_env) == (
        "openai:our-model",
        "http://vllm.internal:8000/v1/",
        "HOSPITAL_KEY",
    )
    assert target.model_options() == {
        "model": "openai:our-model",
        "model_base_url": "http://vllm.internal:8000/v1/",
        "model_api_key_env": "HOSPITAL_KEY",
    }
    monkeypatch.delenv("HOSPITAL_KEY", raising=False)
    with pytest.raises(UserError, match=r"^--model-api-key-env HOSPITAL_KEY: the variable is not set$"):
        target.api_key("--model-api-key-env")
    monkeypatch.setenv("HOSPITAL_KEY", "k-123")
    assert target.api_key() == "k-123"
    assert "k-123" not in repr(target)  # the name of the variable, never the key
    assert Target("production", "https://api.example/v1").api_key() is None


def test_roles_endpoints_and_models_are_checked():
    with pytest.raises(UserError, match="unknown target role 'staging'"):
        Target("staging", "http://x")  # type: ignore[arg-type]
    with pytest.raises(UserError, match=r"^--upstream must be an http\(s\) URL, not 'localhost:8000'$"):
        Target("production", "localhost:8000", source="--upstream")
    with pytest.raises(UserError, match="a production target needs a model"):
        Target("production", "http://x").spec()


def test_the_gateway_flags_describe_production_and_one_candidate_or_shadow():
    both = gateway_targets("http://prod/v1", candidate="http://new/v1", upstream_key_env="UPSTREAM_KEY")
    assert {role: (t.endpoint, t.arm, t.api_key_env) for role, t in both.items()} == {
        "production": ("http://prod/v1", "primary", "UPSTREAM_KEY"),
        "candidate": ("http://new/v1", "candidate", "UPSTREAM_KEY"),
    }
    assert set(gateway_targets("http://prod/v1", shadow="http://new/v1")) == {"production", "shadow"}
    with pytest.raises(UserError, match="--candidate and --shadow are two ways"):
        gateway_targets("http://prod/v1", candidate="http://a", shadow="http://b")
    with pytest.raises(UserError, match=r"^--shadow must be an http"):
        gateway_targets("http://prod/v1", shadow="grpc://b")


def test_the_gateway_routes_by_its_targets():
    from medops.monitor.routing import Routing

    routing = Routing.for_targets(gateway_targets("http://prod", candidate="http://new"), split=0.25, seed=3)
    assert routing == Routing(candidate="http://new", split=0.25, seed=3)
    assert Routing.for_targets(gateway_targets("http://prod", shadow="http://s"), split=0.25) == Routing(
        shadow="http://s"
    )


def test_the_gateway_command_reads_its_flags_as_targets(cli):
    bad = cli.run("gateway", "--upstream", "http://127.0.0.1:9/v1", "--candidate", "localhost:8000")
    assert bad.returncode == 2 and "--candidate must be an http(s) URL, not 'localhost:8000'" in bad.stderr
    unset = cli.run("gateway", "--upstream", "http://127.0.0.1:9/v1", "--upstream-key-env", "NO_SUCH_KEY_SET")
    assert unset.returncode == 2 and "--upstream-key-env NO_SUCH_KEY_SET: the variable is not set" in unset.stderr


def test_a_canary_round_evaluates_its_target():
    from medops.monitor.canary import canary_config

    config = canary_config(
        data="demo",
        model="openai:m",
        grader="openai:g",
        model_base_url="http://vllm:8000/v1",
        model_api_key_env="CANARY_KEY",
    )
    assert (str(config.model), config.model.base_url, config.model.api_key_env) == (
        "openai:m",
        "http://vllm:8000/v1",
        "CANARY_KEY",
    )
    with pytest.raises(UserError, match=r"^--model-base-url must be an http\(s\) URL, not 'vllm:8000'$"):
        canary_config(data="demo", model="openai:m", grader="openai:g", model_base_url="vllm:8000")


def test_dashboard_canary_rounds_check_their_target(monkeypatch, tmp_path):
    from medops.api import check_canary
    from medops.store.repository import Store
    from medops.web.jobs import Jobs

    monkeypatch.setenv("MEDOPS_CANARY_BASE_URLS", "http://vllm.internal:8000/v1")
    given = {"data": "demo", "model": "openai:m", "grader": "openai:g"}
    assert check_canary({**given, "model_base_url": " http://vllm.internal:8000/v1/"})["model"] == "openai:m"
    with pytest.raises(UserError, match=r"^model base URL must be an http\(s\) URL, not 'file:///etc/passwd'$"):
        check_canary({**given, "model_base_url": "file:///etc/passwd"})
    jobs = Jobs(Store.open(str(tmp_path / "medops.db")))
    with pytest.raises(UserError, match=r"^grader base URL must be an http"):
        jobs.start({**given, "grader_base_url": "ftp://vllm.internal"}, actor="op")
    assert jobs.list() == []


@pytest.mark.parametrize(("given", "arm"), [("production", "primary"), ("primary", "primary"), ("shadow", "shadow")])
def test_monitor_policies_name_an_arm_by_role_or_by_its_recorded_name(tmp_path, given, arm):
    from medops.monitor.policy import load_monitor_policy

    path = tmp_path / "monitor.yaml"
    path.write_text(f"arm: {given}\nrules:\n  - {{metric: error_rate, max: 0.1, arm: {given}}}\n", encoding="utf-8")
    policy = load_monitor_policy(path)
    assert policy.arm == arm and policy.rules[0].arm == arm and arm in ARMS


def test_a_policy_arm_that_is_no_target_is_refused_not_ignored(tmp_path):
    from medops.monitor.policy import load_monitor_policy

    path = tmp_path / "monitor.yaml"
    path.write_text("rules:\n  - {metric: error_rate, max: 0.1, arm: canidate}\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"monitor.yaml.*arm.*'canidate' is not a target's role or arm"):
        load_monitor_policy(path)
    with pytest.raises(ValueError, match="known: primary, candidate, shadow, production"):
        arm_name("canary")
