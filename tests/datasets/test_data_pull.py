import hashlib
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import example, write_jsonl


@pytest.fixture
def mirror(tmp_path):
    """A loopback HTTP server standing in for the official blob store (or a hospital mirror)."""
    body = write_jsonl(tmp_path / "src.jsonl", [example("a", [("ok {met}", 1, [])])]).read_bytes()
    requests = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            if not self.path.endswith("2025-05-07-06-14-12_oss_eval.jsonl"):
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/simple-evals/healthbench", body, requests
    httpd.shutdown()


def test_pull_downloads_once_and_records_sha256(cli, mirror, tmp_path, server):
    url, body, requests = mirror
    env = {"MEDOPS_DATA_MIRROR": url}
    first = cli.run("data", "pull", "healthbench", env=env, check=True)
    assert "downloaded" in first.stdout and hashlib.sha256(body).hexdigest() in first.stdout
    cached = tmp_path / "cache" / "2025-05-07-06-14-12_oss_eval.jsonl"
    assert cached.read_bytes() == body
    record = json.loads(cached.with_name(cached.name + ".medops.json").read_text())
    assert record["size_bytes"] == len(body) and record["sha256"] == hashlib.sha256(body).hexdigest()
    second = cli.run("data", "pull", "healthbench", env=env, check=True)
    assert "already cached" in second.stdout and len(requests) == 1
    assert "cached" in cli.run("data", "list", check=True).stdout
    # The built-in name now resolves to the cached file.
    summary = cli.run(*cli.eval_args(server, "healthbench"), "--json", check=True).json()
    assert summary["dataset"]["name"] == "healthbench" and summary["score"] == 1.0


def test_offline_pull_says_how_to_place_the_file(cli, tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = cli.run("data", "pull", "healthbench-hard", env={"MEDOPS_DATA_MIRROR": f"http://127.0.0.1:{port}/x"})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "could not download 'healthbench-hard'" in result.stderr
    assert str(tmp_path / "cache" / "hard_2025-05-08-21-00-10.jsonl") in result.stderr
    assert not list((tmp_path / "cache").glob("*.part"))
    unknown = cli.run("data", "pull", "medqa-full")
    assert unknown.returncode == 2 and "unknown dataset" in unknown.stderr


def test_file_placed_by_hand_is_described_not_fetched(cli, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    placed = write_jsonl(cache / "consensus_2025-05-09-20-00-46.jsonl", [example("a", [("x", 1, [])])])
    result = cli.run(
        "data", "pull", "healthbench-consensus", env={"MEDOPS_DATA_MIRROR": "http://127.0.0.1:9/x"}, check=True
    )
    assert "already cached" in result.stdout and hashlib.sha256(placed.read_bytes()).hexdigest() in result.stdout


def test_a_different_file_under_the_official_name_is_refused(cli, mirror, tmp_path, server):
    url, _, requests = mirror
    env = {"MEDOPS_DATA_MIRROR": url}
    cli.run("data", "pull", "healthbench", env=env, check=True)
    cached = tmp_path / "cache" / "2025-05-07-06-14-12_oss_eval.jsonl"
    write_jsonl(cached, [example("other", [("swapped in {met}", 1, [])])])  # copied over the pulled file
    for result in (
        cli.run("data", "pull", "healthbench", env=env),
        cli.run(*cli.eval_args(server, "healthbench"), "--json"),
    ):
        assert result.returncode == 2 and result.stdout == "" and "Traceback" not in result.stderr
        assert f"{cached} is not the file pulled as 'healthbench'" in result.stderr
        assert "`medops data pull healthbench` again" in result.stderr
    assert len(requests) == 1 and "swapped in" in cached.read_text()  # neither re-fetched nor overwritten


def test_offline_exam_pull_names_the_exact_path_and_takes_the_file_placed_there(cli, tmp_path):
    pytest.importorskip("datasets")
    target = tmp_path / "cache" / "exams" / "medqa.jsonl"
    offline = cli.run("data", "pull", "medqa", env={"HF_HUB_OFFLINE": "1"})
    assert offline.returncode == 2 and "put the converted JSONL" in offline.stderr and str(target) in offline.stderr
    target.parent.mkdir(parents=True)
    placed = write_jsonl(target, [{"question": "Q?", "options": {"A": "a", "B": "b"}, "answer_idx": "A"}])
    again = cli.run("data", "pull", "medqa", env={"HF_HUB_OFFLINE": "1"}, check=True)
    assert "already cached" in again.stdout and hashlib.sha256(placed.read_bytes()).hexdigest() in again.stdout
    placed.write_text(placed.read_text() + placed.read_text())  # changed after it was recorded
    changed = cli.run("data", "pull", "medqa", env={"HF_HUB_OFFLINE": "1"})
    assert changed.returncode == 2 and "is not the file pulled as 'medqa'" in changed.stderr
