"""A physician reviews in a real headless Chromium against a real ``medops serve``: signs in as a
reviewer and labels five examples (Korean and Arabic among them) with the keyboard alone; the
labels are in the store. Screenshots go to test-artifacts/dashboard/."""

from __future__ import annotations

import pytest
from dashboard_store import PASSWORD, Dashboard, start_server
from test_browser import CHROMIUM, Watched, browser  # noqa: F401 (the browser fixture)

from conftest import example, write_jsonl
from medops import api
from medops.testing.fake_openai import FakeBehaviour, FakeOpenAIServer, ServerThread

pytestmark = pytest.mark.skipif(not CHROMIUM, reason="no chromium on this machine (apt-get install chromium)")
TEXTS = [
    "두통이 사흘째 계속됩니다. 어떻게 해야 하나요?",  # Korean
    "أعاني من صداع منذ ثلاثة أيام، ماذا أفعل؟",  # Arabic, right to left
    "My son has had a fever for three days. " * 40,  # a long text
    "I have a cough.",
    "I feel dizzy when I stand up.",
]
KEYS = ["1", "2", "3"]


@pytest.fixture(scope="module")
def review_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("review")
    db = tmp / "medops.db"
    with ServerThread(FakeOpenAIServer(FakeBehaviour())) as fake:
        data = write_jsonl(
            tmp / "set.jsonl",
            [
                example(
                    f"q-{i}",
                    [("Advises rest {met-if:REST}", 3, ["axis:completeness"]), ("Asks the age {met-if:AGE}", 2, [])],
                    text=text,
                )
                for i, text in enumerate(TEXTS)
            ],
        )
        answers = write_jsonl(tmp / "answers.jsonl", [{"index": i, "response": "REST."} for i in range(len(TEXTS))])
        config = api.healthbench_config(
            data=str(data), responses=str(answers), grader="openai:fake-grader", grader_base_url=fake.base_url
        )
        api.evaluate(config, db=str(db), name="reviewed")
    api.create_review_set("reviewed", "ward-a", sample=5, reviewers=2, db=str(db), actor="os:test")
    api.add_user(api.open_store(str(db)), "dr-kim", "reviewer", PASSWORD, actor="os:test")
    found = Dashboard(db, tmp)
    proc = start_server(found, {"MEDOPS_CACHE_DIR": str(tmp / "cache")})
    try:
        yield found
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_reviewer_labels_five_examples_with_the_keyboard_only(review_server, browser):  # noqa: F811
    w = Watched(browser, review_server.base_url)
    w.sign_in("dr-kim")
    w.go("/reviews/ward-a/queue")
    expected = {}
    for n in range(5):
        assert f"Example {n + 1} of 5" in w.page.inner_text("h1")
        assert w.page.locator(".turn p.text[dir=auto]").count() >= 2
        if n == 0:
            w.shot("review-queue", full=True)
        criteria = w.page.locator("fieldset.criterion").count()
        for c in range(criteria):
            key = KEYS[(n + c) % 3]
            w.page.keyboard.press(key)  # chooses for the focused criterion, then focus moves on
            expected[(n, c)] = {"1": True, "2": False, "3": None}[key]
        with w.page.expect_navigation():
            w.page.keyboard.press("Enter")  # save and open the next example
    assert "Queue done" in w.page.inner_text("h1")
    w.shot("review-queue-done")
    store = api.open_store(str(review_server.db))
    from medops.store import reviews

    stored = {
        (x.position, x.criterion_index): x.met for x in reviews.labels(store, reviews.find_set(store, "ward-a").id)
    }
    assert stored == expected
    status = api.review_status("ward-a", db=str(review_server.db))
    assert status["progress"]["reviewers"]["dr-kim"]["n_labels"] == sum(v is not None for v in expected.values())
    assert len(api.audit_events(db=str(review_server.db), action="review.label")["events"]) == 5
    w.check_clean()
    w.close()
