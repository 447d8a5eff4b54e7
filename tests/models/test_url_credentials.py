"""Credentials in a base URL (``https://user:token@host``): sent as HTTP Basic auth, and masked
wherever the URL is stored, shown or logged."""

from __future__ import annotations

import base64
import json
import sqlite3
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiohttp import web

from conftest import example, write_jsonl
from medops.errors import UserError
from medops.models.spec import mask_url_credentials, split_url_credentials, unmask_base_url
from medops.testing.fake_openai import FakeOpenAIServer, ServerThread

TOKEN = "tok-URL-SECRET-0123456789"
BASIC = base64.b64encode(f"alice:{TOKEN}".encode()).decode()


def test_masking_splitting_and_unmasking(monkeypatch):
    assert mask_url_credentials("https://alice:tok@h:8443/v1?x=1") == "https://alice:***@h:8443/v1?x=1"
    assert mask_url_credentials("https://tok@h/v1") == "https://***@h/v1"  # a lone user is often a token
    assert mask_url_credentials("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"
    assert mask_url_credentials(None) is None
    url, header, secrets = split_url_credentials("https://alice:p%40ss@h/v1")
    assert url == "https://h/v1" and header == "Basic " + base64.b64encode(b"alice:p@ss").decode()
    assert "p@ss" in secrets
    assert split_url_credentials("https://h/v1") == ("https://h/v1", None, ())

    monkeypatch.delenv("MEDOPS_GRADER_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert unmask_base_url("https://alice:tok@h/v1", "grader") == "https://alice:tok@h/v1"  # not masked: as given
    with pytest.raises(UserError, match="set MEDOPS_GRADER_BASE_URL to the full URL"):
        unmask_base_url("https://alice:***@h/v1", "grader")
    monkeypatch.setenv("MEDOPS_GRADER_BASE_URL", "https://alice:tok@other-host/v1")  # another endpoint: not used
    with pytest.raises(UserError):
        unmask_base_url("https://alice:***@h/v1", "grader")
    monkeypatch.setenv("MEDOPS_GRADER_BASE_URL", "https://alice:tok@h/v1")
    assert unmask_base_url("https://alice:***@h/v1", "grader") == "https://alice:tok@h/v1"


@dataclass
class RecordingServer(FakeOpenAIServer):
    """The scriptable server, also recording each request's Authorization header."""

    authorizations: list = field(default_factory=list)

    def app(self) -> web.Application:
        app = super().app()

        @web.middleware
        async def record(request: web.Request, handler):
            self.authorizations.append(request.headers.get("Authorization"))
            return await handler(request)

        app.middlewares.append(record)
        return app


def leaked(cli, *texts: str) -> list[str]:
    """Where the secret shows up: the given outputs and every byte of the store's files."""
    places = [f"output {i}" for i, text in enumerate(texts) if TOKEN in text or BASIC in text]
    for path in cli.db.parent.glob(cli.db.name + "*"):
        data = path.read_bytes()
        if TOKEN.encode() in data or BASIC.encode() in data:
            places.append(path.name)
    return places


@pytest.mark.parametrize("transport", ["aiohttp", "sdk"])
def test_a_credentialed_base_url_works_and_is_stored_and_shown_masked(cli, tmp_path, transport):
    data = write_jsonl(tmp_path / "d.jsonl", [example("a", [("Advises rest {met}", 5, [])])])
    with ServerThread(RecordingServer()) as server:
        with_credentials = server.base_url.replace("http://", f"http://alice:{TOKEN}@")
        masked = server.base_url.replace("http://", "http://alice:***@")
        args = ["eval", "healthbench", "--data", str(data), "--grader", "openai:fake-grader"]
        args += ["--grader-base-url", server.base_url, "--model-base-url", with_credentials]
        run = cli.run(*args, "--model", f"openai:fake-model,transport={transport}", "--json", "--name", "ok")
        assert run.returncode == 0, run.stderr
        assert run.json()["score"] == 1.0
        # The model got HTTP Basic auth from the URL (no bearer key); the grader its bearer key.
        assert f"Basic {BASIC}" in server.server.authorizations
        assert sum(a.startswith("Bearer ") for a in server.server.authorizations) == 1
        with sqlite3.connect(cli.db) as connection:
            (config,) = connection.execute("select config from runs where name = 'ok'").fetchone()
        assert json.loads(config)["model"]["base_url"] == masked
        shown = cli.run("runs", "show", "ok", "--json", check=True)
        assert masked in shown.stdout

        # A refused key: the failure names the endpoint masked, and the server's echo is redacted.
        failed = cli.run(*args, "--model", f"openai:fake-model-unauthorized,transport={transport}", "--name", "bad")
        assert failed.returncode == 2 and "Traceback" not in failed.stderr
        assert f"at {masked}: HTTP 401" in failed.stderr
        # Resuming needs the credentials, which were never stored: one line says where to give them.
        resumed = cli.run("eval", "healthbench", "--resume", "bad")
        assert resumed.returncode == 2 and "Traceback" not in resumed.stderr
        assert resumed.stderr.strip().splitlines() == [
            f"error: model: base URL {masked} carried credentials, which medops never stores; "
            "to resume, set MEDOPS_MODEL_BASE_URL to the full URL"
        ]
        before = len(server.server.authorizations)
        again = cli.run("eval", "healthbench", "--resume", "bad", env={"MEDOPS_MODEL_BASE_URL": with_credentials})
        assert f"at {masked}: HTTP 401" in again.stderr  # the endpoint was reached, with the credentials
        assert server.server.authorizations[before:] == [f"Basic {BASIC}"]
        assert leaked(cli, run.stdout, run.stderr, shown.stdout, failed.stdout, failed.stderr, again.stderr) == []


def test_a_mirror_url_with_credentials_is_masked(cli, tmp_path):
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers.get("Authorization"))
            self.send_error(404)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        mirror = f"http://alice:{TOKEN}@127.0.0.1:{httpd.server_address[1]}/x"
        result = cli.run("data", "pull", "healthbench-hard", env={"MEDOPS_DATA_MIRROR": mirror})
    finally:
        httpd.shutdown()
    assert seen == [f"Basic {BASIC}"]
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "404" in result.stderr and f"alice:***@127.0.0.1:{httpd.server_address[1]}/x" in result.stderr
    assert TOKEN not in result.stderr + result.stdout
