"""The dashboard in a real headless Chromium against a real ``medops serve``: sign in, runs -> run
-> example, compare, monitoring with an operator's canary round, a viewer refused on admin pages
and shown redacted examples; injected markup inert; no request leaves the server's origin; no CSP
violation. Screenshots (1366x768, the smallest workstation screen we design for) go to test-artifacts/."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from dashboard_store import EVIL, PASSWORD, PATIENT, build, start_server

from conftest import REPO
from medops.testing.fake_openai import FakeBehaviour, FakeOpenAIServer, ServerThread

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(not CHROMIUM, reason="no chromium on this machine (apt-get install chromium)")
ARTIFACTS = REPO / "test-artifacts" / "dashboard"
VIEWPORT = {"width": 1366, "height": 768}


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dashboard")
    with ServerThread(FakeOpenAIServer(FakeBehaviour())) as fake:
        found = build(tmp, fake.base_url)
        env = {"MEDOPS_CACHE_DIR": str(tmp / "cache"), "MEDOPS_MODEL_BASE_URL": fake.base_url}
        env["MEDOPS_CANARY_DATA_DIRS"] = str(tmp)  # the canary form's data file lives there
        proc = start_server(found, env)
        found.fake_base_url = fake.base_url  # type: ignore[attr-defined]
        try:
            yield found
        finally:
            proc.terminate()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def browser():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield launched
        launched.close()


class Watched:
    """A page whose requests, console errors (CSP violations among them) and page errors are kept."""

    def __init__(self, browser, base_url: str):
        self.context = browser.new_context(viewport=VIEWPORT)
        self.page = self.context.new_page()
        self.base_url = base_url
        self.requests: list[str] = []
        self.problems: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("console", lambda m: self.problems.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.problems.append(str(e)))

    def go(self, path: str):
        response = self.page.goto(self.base_url + path)
        self.page.wait_for_load_state("load")
        return response

    def sign_in(self, name: str):
        self.go("/runs")
        assert self.page.url.startswith(self.base_url + "/login")  # no session: the login page
        self.page.fill("input[name=name]", name)
        self.page.fill("input[name=password]", PASSWORD)
        self.page.click("button[type=submit]")
        self.page.wait_for_url(self.base_url + "/runs")

    def shot(self, name: str, *, full: bool = False):
        path = ARTIFACTS / f"{name}.png"
        self.page.evaluate("window.scrollTo(0, 0)")
        self.page.screenshot(path=str(path), full_page=full)
        return path

    def check_clean(self):
        assert self.problems == [], self.problems
        foreign = [u for u in self.requests if not u.startswith(self.base_url + "/")]
        assert foreign == [], f"requests that left the server's origin: {foreign}"
        assert self.page.evaluate("window.__pwned") is None  # injected markup never ran

    def close(self):
        self.context.close()


def test_an_admin_browses_runs_a_run_and_an_example(dashboard, browser):
    w = Watched(browser, dashboard.base_url)
    w.page.goto(dashboard.base_url + "/login")
    w.shot("login")
    w.sign_in("adm-user")
    assert w.page.locator("table.data tbody tr").count() == 3
    w.shot("runs")
    w.page.fill("input[name=q]", "cand")
    w.page.click("form.filters button.primary")
    w.page.wait_for_load_state("load")
    assert w.page.locator("table.data tbody tr").count() == 1
    w.page.click("table.data tbody tr td:nth-child(2) a")
    w.page.wait_for_load_state("load")
    assert "candidate" in w.page.inner_text("h1")
    assert w.page.locator("svg.plot").count() == 3  # themes, axes, example scores
    assert EVIL[:30] in w.page.inner_text("body")  # the response reads as text
    w.shot("run", full=True)
    w.page.click("text=Negative criterion met")
    w.page.wait_for_load_state("load")
    assert w.page.locator("article.example").count() == 1
    w.page.locator("article.example").first.locator("text=Open the conversation").click()
    w.page.wait_for_load_state("load")
    body = w.page.inner_text("body")
    assert PATIENT in body and "[PERSON_1]" not in body  # an admin sees the unredacted conversation
    assert w.page.locator(".criteria tbody tr").count() == 2 and "Recommends antibiotics" in body
    w.shot("example", full=True)
    assert "1 of 3" in w.page.inner_text("nav[aria-label=examples]")
    w.page.click("a[rel=next]")  # on to the next example of the run
    w.page.wait_for_load_state("load")
    assert w.page.url.endswith("/examples/1") and "2 of 3" in w.page.inner_text("nav[aria-label=examples]")
    assert w.page.locator("a[rel=prev]").count() == 1
    w.check_clean()
    w.close()


def test_compare_two_runs_and_the_other_pages(dashboard, browser):
    w = Watched(browser, dashboard.base_url)
    w.sign_in("adm-user")
    w.go("/compare")
    w.page.select_option("select[name=baseline]", "1")
    w.page.select_option("select[name=candidate]", "2")
    w.page.click("form.filters button.primary")
    w.page.wait_for_load_state("load")
    assert "overall_score" in w.page.inner_text("table.data") and w.page.locator("svg.plot").count() == 1
    w.shot("compare", full=True)
    for path, marker in (
        ("/gates", "FAILED"),
        ("/datasets", "sha256"),
        ("/audit", "Chain intact"),
        ("/admin", "adm-user"),
        ("/runs/exam", "Wrong answers"),
    ):
        w.go(path)
        assert marker in w.page.inner_text("main"), path
        w.shot(path.strip("/").replace("/", "-"), full=True)
    w.check_clean()
    w.close()


def test_an_operator_starts_a_canary_round_and_acknowledges_an_alert(dashboard, browser):
    w = Watched(browser, dashboard.base_url)
    w.sign_in("ope-user")
    w.go("/monitoring")
    assert w.page.locator("svg.series").count() == 1  # the online score series
    w.page.fill("input[name=data]", str(Path(dashboard.tmp) / "set.jsonl"))
    w.page.fill("input[name=model]", "openai:fake-model")
    w.page.fill("input[name=grader]", "openai:fake-grader")
    w.page.fill("input[name=grader_base_url]", dashboard.fake_base_url)
    w.page.click("form.grid-form button.primary")
    w.page.wait_for_load_state("load")
    deadline = time.monotonic() + 30
    while "done" not in w.page.inner_text("#canary ~ table") and time.monotonic() < deadline:
        time.sleep(0.5)
        w.go("/monitoring")
    assert "done" in w.page.inner_text("#canary ~ table")
    w.page.click("form[action$='/acknowledge'] button")
    w.page.wait_for_load_state("load")
    assert "by user:ope-user" in w.page.inner_text("#alerts ~ table")
    w.shot("monitoring", full=True)
    w.page.locator("#canary ~ table a").first.click()  # the canary's run
    w.page.wait_for_load_state("load")
    assert "openai:fake-model" in w.page.inner_text("main")
    w.check_clean()
    w.close()


def test_a_viewer_is_refused_on_admin_pages_and_sees_redacted_examples(dashboard, browser):
    w = Watched(browser, dashboard.base_url)
    w.sign_in("vie-user")
    assert "Audit" not in w.page.inner_text("header nav")  # no link to what the role cannot open
    for path in ("/audit", "/admin"):
        response = w.go(path)
        assert response.status == 403 and "needs the admin role" in w.page.inner_text("main")
    w.shot("viewer-refused")
    w.problems.clear()  # the browser logs each 403 as a failed resource; nothing else may be there
    w.go("/runs/candidate/examples/0")
    body = w.page.inner_text("body")
    assert PATIENT not in body and "[PERSON_1]" in body and "[PHONE_NUMBER_1]" in body
    w.shot("example-redacted", full=True)
    w.go("/monitoring")
    assert w.page.locator("form[action$='/acknowledge']").count() == 0  # operators only
    assert w.page.locator("#canary").count() == 0
    w.page.click("header form button")  # sign out
    w.page.wait_for_url(dashboard.base_url + "/login")
    w.go("/runs")
    assert w.page.url.startswith(dashboard.base_url + "/login")
    w.check_clean()
    w.close()
