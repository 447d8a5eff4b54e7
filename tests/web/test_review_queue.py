"""Reviewing in the dashboard, in process: who may open the review pages (401/403/200 is in
test_routes), labels saved from the queue form with the CSRF token, ``unsure`` stored but missing
to agreement, each label an audit event without text, blinding per set, and adjudication kept
beside the reviewers' labels."""

from __future__ import annotations

import re

import pytest
from dashboard_store import build
from fastapi.testclient import TestClient
from test_routes import signed_in

from medops import api
from medops.store import reviews
from medops.testing.fake_openai import FakeBehaviour, FakeOpenAIServer, ServerThread
from medops.web import create_app

SET = "dash-set"


@pytest.fixture()
def dash(tmp_path):
    with ServerThread(FakeOpenAIServer(FakeBehaviour())) as fake:
        found = build(tmp_path, fake.base_url)
    found.app = create_app(str(found.db))  # type: ignore[attr-defined]
    return found


def queue_csrf(c: TestClient, path: str = f"/reviews/{SET}/queue") -> tuple[str, str]:
    page = c.get(path)
    assert page.status_code == 200, page.text[:300]
    return page.text, re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def test_a_reviewer_labels_from_the_queue_and_unsure_is_missing_to_agreement(dash):
    c, _ = signed_in(dash, "rev-user")
    page, csrf = queue_csrf(c)
    assert 'dir="auto"' in page and "Example 1 of 3" in page and "grader:" not in page  # blinded by default
    r = c.post(f"/reviews/{SET}/queue/0", data={"csrf": csrf, "c0": "met", "c1": "unsure", "note1": "unclear"})
    assert r.status_code == 303 and r.headers["location"] == f"/reviews/{SET}/queue?position=1"
    status = api.review_status(SET, db=str(dash.db))
    assert status["n_labels"] == 1  # the unsure label is not a met / not-met label
    assert status["progress"]["reviewers"]["rev-user"]["n_labels"] == 1
    stored = {(x.criterion_index, x.met, x.comment) for x in reviews.labels(api.open_store(str(dash.db)), 1)}
    assert stored == {(0, True, None), (1, None, "unclear")}
    events = api.audit_events(db=str(dash.db), action="review.label")["events"]
    assert len(events) == 1 and events[0]["actor"] == "user:rev-user"
    assert events[0]["details"] == {"reviewer": "rev-user", "position": 0, "n_labels": 2, "source": "dashboard"}
    assert "unclear" not in str(events)  # never the comment's text
    page, _ = queue_csrf(c, f"/reviews/{SET}/queue?position=0")  # the reviewer's own labels are shown again
    assert re.search(r'value="met" data-key="1" checked', page) and 'value="unclear"' in page


def test_labels_need_the_csrf_token_the_reviewer_role_and_a_choice(dash):
    c, csrf = signed_in(dash, "rev-user")
    assert c.post(f"/reviews/{SET}/queue/0", data={"c0": "met"}).status_code == 403  # no CSRF token
    viewer, viewer_csrf = signed_in(dash, "vie-user")
    assert viewer.post(f"/reviews/{SET}/queue/0", data={"csrf": viewer_csrf, "c0": "met"}).status_code == 403
    assert c.post(f"/reviews/{SET}/queue/0", data={"csrf": csrf}).status_code == 400  # nothing chosen
    assert c.post(f"/reviews/{SET}/queue/0", data={"csrf": csrf, "c0": "maybe"}).status_code == 400
    assert c.post(f"/reviews/{SET}/queue/0", data={"csrf": csrf, "c9": "met"}).status_code == 400
    assert c.post(f"/reviews/{SET}/queue/99", data={"csrf": csrf, "c0": "met"}).status_code == 400
    assert api.review_status(SET, db=str(dash.db))["n_labels"] == 0  # nothing half-written


def test_blinding_is_per_set_and_operators_adjudicate_beside_the_labels(dash):
    api.label_review_example(SET, 0, "dr-a", {0: "met", 1: "met"}, db=str(dash.db))
    api.label_review_example(SET, 0, "dr-b", {0: "not_met", 1: "met"}, db=str(dash.db))
    reviewer, rev_csrf = signed_in(dash, "rev-user")
    assert "dr-a" not in queue_csrf(reviewer, f"/reviews/{SET}/queue?position=0")[0]
    operator, csrf = signed_in(dash, "ope-user")
    assert reviewer.post(f"/reviews/{SET}/blinding", data={"csrf": rev_csrf, "blinded": "off"}).status_code == 403
    assert operator.post(f"/reviews/{SET}/blinding", data={"csrf": csrf, "blinded": "off"}).status_code == 303
    page = queue_csrf(reviewer, f"/reviews/{SET}/queue?position=0")[0]
    assert "grader:" in page and "dr-a: met" in page and "dr-b: not met" in page
    page = operator.get(f"/reviews/{SET}/adjudicate").text
    assert "dr-a: met" in page and "dr-b: not met" in page and page.count('name="criterion"') == 1
    form = {"csrf": rev_csrf, "position": "0", "criterion": "0", "met": "true"}
    assert reviewer.post(f"/reviews/{SET}/adjudicate", data=form).status_code == 403
    assert operator.post(f"/reviews/{SET}/adjudicate", data={**form, "csrf": csrf}).status_code == 303
    (row,) = api.review_disagreements(SET, db=str(dash.db))
    assert row["final"] == {"met": True, "by": "user:ope-user"}
    assert row["labels"] == {"dr-a": True, "dr-b": False}  # the reviewers' labels are untouched
    assert "by user:ope-user" in operator.get(f"/reviews/{SET}/adjudicate").text
    actions = [e["action"] for e in api.audit_events(db=str(dash.db), action="review.")["events"]]
    assert actions.count("review.adjudicate") == 1 and actions.count("review.blinding") == 1
