"""Models say what they can do: the backend registry, ``ModelSpec`` as runs store it, and the
capability questions callers ask instead of testing backend names."""

from __future__ import annotations

import asyncio
import importlib
import subprocess
import sys
import textwrap

import pytest
from pydantic import ValidationError

from conftest import example, write_jsonl
from medops.errors import UserError
from medops.evaluation.config import HealthBenchConfig, McqaConfig
from medops.evaluation.run import run_healthbench
from medops.grading.templates import default_template
from medops.models.backends import BACKENDS, Capabilities, backends_with, register
from medops.models.openai_chat import RetryPolicy
from medops.models.pricing import Price, price_for, priced
from medops.models.spec import ModelSpec, create_model, parse_model_spec
from medops.store.repository import Store

OLD_GRADER = {  # a grader as runs stored it before ModelSpec and SpecConfig were one
    "backend": "openai",
    "name": "gpt-4.1",
    "base_url": "https://alice:***@llm.example/v1",
    "api_key_env": "GRADER_KEY",
    "options": {"transport": "sdk"},
}


def test_every_backend_declares_what_it_can_do_and_how_to_build_it():
    assert {name: b.capabilities for name, b in BACKENDS.items()} == {
        "openai": Capabilities(logprobs=True, priced=True, images=True),
        "local": Capabilities(in_process=True, choice_scoring=True),
        "hf": Capabilities(in_process=True, choice_scoring=True),
    }
    for b in BACKENDS.values():
        module, _, function = b.create.partition(":")
        assert callable(getattr(importlib.import_module(module), function)), b.create
    assert backends_with("choice_scoring") == ["local", "hf"]
    with pytest.raises(ValueError):
        backends_with("streaming")


def test_a_spec_answers_from_the_registry_without_building_or_importing_its_backend():
    code = textwrap.dedent(
        """
        import sys
        from medops.models.spec import parse_model_spec
        caps = parse_model_spec("hf:/no/such/checkpoint,dtype=bfloat16").capabilities
        assert caps.in_process and caps.choice_scoring and not caps.priced, caps
        assert parse_model_spec("openai:gpt-4.1").capabilities.priced
        loaded = [m for m in ("torch", "transformers", "medops.models.local_hf", "medops.models.openai_chat")
                  if m in sys.modules]
        assert not loaded, loaded
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_built_model_reports_its_specs_capabilities(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    spec = parse_model_spec("openai:gpt-4.1", base_url="http://127.0.0.1:9/v1")
    model = create_model(spec, role="model", concurrency=2, retry=RetryPolicy())
    assert model.capabilities == spec.capabilities and not model.capabilities.in_process
    asyncio.run(model.aclose())


def test_unknown_backend_is_one_line():
    with pytest.raises(UserError, match="unknown backend 'vllm'; known: openai, local, hf"):
        parse_model_spec("vllm:x")
    with pytest.raises(UserError, match="unknown backend 'vllm'"):
        _ = ModelSpec(backend="vllm", name="x").capabilities


def test_an_old_stored_config_validates_and_is_stored_in_the_same_shape():
    old = {
        "task": "meta-eval",  # before HealthBenchConfig's field was named benchmark
        "data": "healthbench-meta",
        "limit": 5,
        "model": None,
        "grader": OLD_GRADER,
        "completions": "given",
        "grader_template": "T <<conversation>> <<rubric_item>>",
        "rubric_item_format": "text",
    }
    config = HealthBenchConfig.model_validate(old)
    assert config.benchmark == "meta-eval" and config.limit == 5
    assert isinstance(config.grader, ModelSpec) and str(config.grader) == "openai:gpt-4.1"
    assert config.grader.options == {"transport": "sdk"} and config.grader.api_key_env == "GRADER_KEY"
    record = config.record()
    assert "task" not in record and record["benchmark"] == "meta-eval"
    assert record["grader"] == OLD_GRADER  # the same JSON shape as before
    assert HealthBenchConfig.model_validate(record) == config  # and it reads back
    assert HealthBenchConfig.model_validate({**old, "task": "healthbench"}).benchmark == "healthbench"
    with pytest.raises(ValidationError):
        HealthBenchConfig.model_validate({**old, "task": "mcqa"})

    exam = McqaConfig.model_validate({"task": "kmle", "data": "k.jsonl", "model": {**OLD_GRADER, "options": {}}})
    assert exam.task == "kmle" and exam.model.capabilities.priced
    assert exam.record()["model"] == {**OLD_GRADER, "options": {}}


def test_a_spec_keeps_url_credentials_in_memory_and_stores_them_masked():
    spec = parse_model_spec("openai:gpt-4.1", base_url="https://alice:tok-SECRET@llm.example/v1")
    config = HealthBenchConfig(data="d.jsonl", grader=spec, grader_template="T")
    assert config.grader.base_url == "https://alice:tok-SECRET@llm.example/v1"  # what the run connects with
    assert config.record()["grader"]["base_url"] == "https://alice:***@llm.example/v1"
    assert spec.model_dump()["base_url"] == "https://alice:***@llm.example/v1"
    assert str(spec) == "openai:gpt-4.1"
    with pytest.raises(ValidationError):
        spec.name = "other"  # frozen


def test_pricing_asks_whether_a_backend_is_priced():
    table = {"gpt-4.1": Price(input=2, output=8), "hf:big": Price(input=1, output=1)}
    assert priced("openai:gpt-4.1") and not priced("local:smollm2") and not priced("hf:x")
    assert priced("vllm:x")  # an unknown backend's price is asked for, never assumed zero
    assert price_for("openai:gpt-4.1", table) == Price(input=2, output=8)
    assert price_for("openai:unlisted", table) is None
    assert price_for("local:smollm2", table) == Price(input=0, output=0)
    assert price_for("hf:big", table) == Price(input=1, output=1)  # in-process, priced by the table (GPU time)
    assert price_for("vllm:x", table) is None


ECHO_BACKEND = """
from medops.models.base import Completion

BUILT = []


class EchoModel:
    def __init__(self, spec, role):
        self.spec, self.label, self.capabilities = spec, str(spec), spec.capabilities
        BUILT.append(role)

    def identity(self):
        return {"endpoint": "in-process", "model": self.spec.name}

    async def complete(self, messages, params):
        prompt = messages[-1]["content"]
        text = '{"explanation": "ok", "criteria_met": true}' if "criteria_met" in prompt else "Rest and drink water."
        return Completion(text=text, prompt_tokens=10, completion_tokens=5, calls=1)

    def stop(self):
        pass

    async def aclose(self):
        pass


def create(spec, *, role, concurrency, retry, batch_size):
    return EchoModel(spec, role)
"""


def test_a_new_backend_is_its_module_and_one_registration_line(tmp_path, monkeypatch):
    (tmp_path / "echo_backend.py").write_text(ECHO_BACKEND)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(BACKENDS, "echo", None)  # removed again after the test
    register("echo", Capabilities(in_process=True), "echo_backend:create")

    spec = parse_model_spec("echo:tiny")
    assert spec.capabilities == Capabilities(in_process=True) and price_for(str(spec), {}) == Price(input=0, output=0)
    data = write_jsonl(tmp_path / "d.jsonl", [example("p1", [("Advises rest", 5, [])])])
    config = HealthBenchConfig(
        data=str(data), model=spec, grader=spec, grader_template=default_template(), budget_usd=0.01
    )
    outcome = run_healthbench(config, Store.open(str(tmp_path / "s.db")))
    assert outcome.status == "completed" and outcome.summary["score"] == 1.0
    # in process: one copy served both roles; unpriced: the budget asked for no price
    assert importlib.import_module("echo_backend").BUILT == ["model"]
