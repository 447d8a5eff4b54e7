"""The dashboard's pages: the same calls as ``/api/``, rendered for people. Forms that change
something carry the session's CSRF token and redirect after success (post/redirect/get)."""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from medops import api
from medops.errors import UserError
from medops.web.auth import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Caller,
    NotSignedIn,
    admin,
    caller,
    check_csrf,
    operator,
    reviewer,
    store_of,
    viewer,
)
from medops.web.render import render

router = APIRouter(include_in_schema=False)
PAGE = 25  # examples per page


def _secure(request: Request) -> bool:
    chosen = request.app.state.secure_cookies
    return request.url.scheme == "https" if chosen is None else chosen


def _safe_next(target: str | None) -> str:
    """Only a path on this server (no //host, no scheme): never an open redirect."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/runs"
    return target


def _back(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


# --- sign in and out ------------------------------------------------------------------------


def _login_page(request: Request, *, next_path: str, error: str | None = None, status: int = 200) -> Response:
    token = secrets.token_urlsafe(24)
    sso = request.app.state.oidc is not None
    response = render(request, "login.j2", status=status, login_csrf=token, next_path=next_path, error=error, sso=sso)
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=_secure(request), path="/login"
    )
    return response


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    try:
        if caller(request) is not None:
            return _back(_safe_next(next))
    except NotSignedIn:
        pass
    return _login_page(request, next_path=_safe_next(next))


@router.post("/login")
def login(
    request: Request,
    name: str = Form(""),
    password: str = Form(""),
    csrf: str = Form(""),
    next: str = Form("/runs"),
) -> Response:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not csrf or not expected or not hmac.compare_digest(csrf.encode(), expected.encode()):
        return _login_page(
            request, next_path=_safe_next(next), error="The sign-in form expired: try again.", status=403
        )
    client = request.client.host if request.client else "unknown"
    try:
        principal = api.login(store_of(request), name.strip(), password, client=client)
    except api.AuthError as exc:
        return _login_page(request, next_path=_safe_next(next), error=str(exc), status=exc.status)
    session = api.open_session(store_of(request), principal)
    response = _back(_safe_next(next))
    response.set_cookie(SESSION_COOKIE, session.id, httponly=True, samesite="lax", secure=_secure(request), path="/")
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, csrf: str = Form(""), found: Caller = Depends(viewer)) -> Response:
    check_csrf(found, csrf)
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        api.close_session(store_of(request), session_id)
    response = _back("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# --- runs -----------------------------------------------------------------------------------


@router.get("/")
def home(found: Caller = Depends(viewer)) -> Response:
    return _back("/runs")


@router.get("/runs")
def runs(
    request: Request,
    benchmark: str = "",
    model: str = "",
    dataset: str = "",
    status: str = "",
    since: str = "",
    until: str = "",
    q: str = "",
    found: Caller = Depends(viewer),
) -> Response:
    store = store_of(request)
    every = api.runs(store)
    chosen = api.runs_filtered(
        store, benchmark=benchmark, model=model, dataset=dataset, status=status, since=since, until=until, search=q
    )
    choices = {key: sorted({r[key] for r in every if r[key]}) for key in ("benchmark", "model", "dataset", "status")}
    filters = {"benchmark": benchmark, "model": model, "dataset": dataset, "status": status}
    filters.update(since=since, until=until, q=q)
    return render(request, "runs.j2", active="runs", runs=chosen, total=len(every), choices=choices, filters=filters)


@router.get("/runs/{ref}")
def run(request: Request, ref: str, flag: str = "all", page: int = 1, found: Caller = Depends(viewer)) -> Response:
    store = store_of(request)
    detail = api.run_detail(ref, db=store)
    page = max(page, 1)
    p = found.principal
    examples = api.run_examples(
        ref, db=store, redact=not p.can("admin"), flag=flag, offset=(page - 1) * PAGE, limit=PAGE, actor=p.actor
    )
    pages = max(1, -(-examples["total"] // PAGE))
    runs_all = [r for r in api.runs(store) if r["benchmark"] == detail["run"]["benchmark"]]
    return render(
        request,
        "run.j2",
        active="runs",
        run=detail["run"],
        metrics=detail["metrics"],
        charts=detail["charts"],
        unit=detail["unit"],
        examples=examples,
        page=page,
        pages=pages,
        others=[r for r in runs_all if r["run_id"] != detail["run"]["run_id"]],
    )


@router.get("/runs/{ref}/examples/{index}")
def example(request: Request, ref: str, index: int, repeat: int = 0, found: Caller = Depends(viewer)) -> Response:
    store = store_of(request)
    p = found.principal
    document = api.run(ref, db=store)
    shown = api.run_example(ref, index, repeat=repeat, db=store, redact=not p.can("admin"), actor=p.actor)
    return render(request, "example.j2", active="runs", run=document, e=shown)


@router.get("/runs/{ref}/images/{sha256}")
def image(request: Request, ref: str, sha256: str, found: Caller = Depends(admin)) -> Response:
    """An image of the run's items, from the store (admin: an image cannot be redacted)."""
    media_type, data = api.run_image(ref, sha256, db=store_of(request))
    return Response(data, media_type=media_type, headers={"Cache-Control": "private, max-age=3600"})


@router.get("/compare")
def compare(request: Request, baseline: str = "", candidate: str = "", found: Caller = Depends(viewer)) -> Response:
    store = store_of(request)
    every = list(reversed(api.runs(store)))
    result = api.compare_detail(baseline, candidate, db=store) if baseline and candidate else None
    return render(
        request, "compare.j2", active="compare", runs=every, baseline=baseline, candidate=candidate, result=result
    )


@router.get("/gates")
def gates(request: Request, run: str = "", found: Caller = Depends(viewer)) -> Response:
    store = store_of(request)
    history = api.gate_history(db=store, run_ref=run or None)
    return render(request, "gates.j2", active="gates", history=history, run=run, runs=list(reversed(api.runs(store))))


# --- monitoring -----------------------------------------------------------------------------


@router.get("/monitoring")
def monitoring(request: Request, since: str = "", job: int | None = None, found: Caller = Depends(viewer)) -> Response:
    store = store_of(request)
    doc = api.monitoring(db=store, since=since or None)
    jobs = request.app.state.jobs.list() if found.principal.can("operator") else []
    return render(
        request,
        "monitoring.j2",
        active="monitoring",
        doc=doc,
        since=since,
        jobs=jobs,
        highlight=job,
        runs=list(reversed(api.runs(store))),
    )


@router.post("/monitoring/alerts/{alert_id}/acknowledge")
def acknowledge(request: Request, alert_id: int, csrf: str = Form(""), found: Caller = Depends(operator)) -> Response:
    check_csrf(found, csrf)
    api.acknowledge_alert(store_of(request), alert_id, actor=found.principal.actor)
    return _back("/monitoring#alerts")


@router.post("/monitoring/canary")
def start_canary(
    request: Request,
    csrf: str = Form(""),
    data: str = Form(""),
    model: str = Form(""),
    grader: str = Form(""),
    task: str = Form(""),
    baseline: str = Form(""),
    model_base_url: str = Form(""),
    grader_base_url: str = Form(""),
    limit: str = Form(""),
    found: Caller = Depends(operator),
) -> Response:
    check_csrf(found, csrf)
    params = {
        "data": data.strip(),
        "model": model.strip(),
        "grader": grader.strip(),
        "task": task.strip(),
        "baseline": baseline.strip(),
        "model_base_url": model_base_url.strip(),
        "grader_base_url": grader_base_url.strip(),
        "limit": limit.strip(),
    }
    job = request.app.state.jobs.start(params, actor=found.principal.actor)
    job.started.wait(timeout=5)  # the run exists within moments: the page links to it
    return _back(f"/monitoring?job={job.id}#canary")


# --- review sets: physicians label, operators adjudicate ------------------------------------


def _reviewer_name(found: Caller) -> str:
    """Whose labels these are: the signed-in account (a token: its owner, else the token)."""
    return found.principal.account or found.principal.actor


@router.get("/reviews")
def review_sets(request: Request, found: Caller = Depends(reviewer)) -> Response:
    return render(request, "reviews.j2", active="reviews", sets=api.review_sets(db=store_of(request)))


@router.get("/reviews/{name}")
def review_set(request: Request, name: str, found: Caller = Depends(reviewer)) -> Response:
    doc = api.review_status(name, db=store_of(request))
    mine = doc["progress"]["reviewers"].get(_reviewer_name(found))
    return render(request, "review_set.j2", active="reviews", doc=doc, mine=mine)


@router.get("/reviews/{name}/queue")
def review_queue(
    request: Request, name: str, position: int | None = None, found: Caller = Depends(reviewer)
) -> Response:
    p = found.principal
    doc = api.review_queue_item(
        name, _reviewer_name(found), position=position, db=store_of(request), redact=not p.can("admin")
    )
    return render(request, "review_queue.j2", active="reviews", doc=doc, choices=REVIEW_CHOICES)


REVIEW_CHOICES = (("met", "Met", "1"), ("not_met", "Not met", "2"), ("unsure", "Unsure", "3"))


@router.post("/reviews/{name}/queue/{position}")
async def save_review_labels(request: Request, name: str, position: int, found: Caller = Depends(reviewer)) -> Response:
    form = await request.form()
    check_csrf(found, str(form.get("csrf", "")))
    choices = {int(k[1:]): str(v) for k, v in form.items() if k[:1] == "c" and k[1:].isdigit() and v}
    comments = {int(k[4:]): str(v).strip() for k, v in form.items() if k[:4] == "note" and k[4:].isdigit()}
    if not choices:
        raise UserError("choose met, not met or unsure for at least one criterion (keys 1, 2, 3)")
    who = _reviewer_name(found)
    store = store_of(request)
    api.label_review_example(name, position, who, choices, comments, db=store, actor=found.principal.actor)
    following = api.next_review_position(name, who, after=position, db=store)
    target = f"/reviews/{quote(name, safe='')}/queue"
    return _back(target if following is None else f"{target}?position={following}")


@router.post("/reviews/{name}/blinding")
def review_blinding(
    request: Request, name: str, csrf: str = Form(""), blinded: str = Form(""), found: Caller = Depends(operator)
) -> Response:
    check_csrf(found, csrf)
    api.set_review_blinding(name, blinded == "on", db=store_of(request), actor=found.principal.actor)
    return _back(f"/reviews/{quote(name, safe='')}")


@router.get("/reviews/{name}/adjudicate")
def review_adjudication(request: Request, name: str, found: Caller = Depends(operator)) -> Response:
    rows = api.review_disagreements(name, db=store_of(request))
    return render(request, "review_adjudicate.j2", active="reviews", name=name, rows=rows)


@router.post("/reviews/{name}/adjudicate")
def adjudicate(
    request: Request,
    name: str,
    csrf: str = Form(""),
    position: int = Form(...),
    criterion: int = Form(...),
    met: str = Form(""),
    found: Caller = Depends(operator),
) -> Response:
    check_csrf(found, csrf)
    if met not in ("true", "false"):
        raise UserError("the final label is met (true) or not met (false)")
    api.adjudicate_review(name, position, criterion, met == "true", actor=found.principal.actor, db=store_of(request))
    return _back(f"/reviews/{quote(name, safe='')}/adjudicate")


# --- datasets, audit, accounts ----------------------------------------------------------------


@router.get("/datasets")
def datasets(request: Request, found: Caller = Depends(viewer)) -> Response:
    return render(request, "datasets.j2", active="datasets", datasets=api.datasets(db=store_of(request)))


@router.get("/audit")
def audit(request: Request, action: str = "", last: int = 500, found: Caller = Depends(admin)) -> Response:
    doc = api.audit_events(db=store_of(request), last=max(1, min(last, 100000)), action=action or None)
    return render(request, "audit.j2", active="audit", doc=doc, action=action, last=last)


def _accounts_page(request: Request, *, new_token: str | None = None, token_name: str | None = None) -> Response:
    store = store_of(request)
    return render(
        request,
        "admin.j2",
        active="admin",
        users=api.users(store),
        tokens=api.tokens(store),
        roles=api.ROLES,
        new_token=new_token,
        token_name=token_name,
    )


@router.get("/admin")
def accounts(request: Request, found: Caller = Depends(admin)) -> Response:
    return _accounts_page(request)


@router.post("/admin/users")
def add_user(
    request: Request,
    csrf: str = Form(""),
    name: str = Form(""),
    role: str = Form("viewer"),
    password: str = Form(""),
    found: Caller = Depends(admin),
) -> Response:
    check_csrf(found, csrf)
    api.add_user(store_of(request), name.strip(), role, password, actor=found.principal.actor)
    return _back("/admin#users")


@router.post("/admin/users/{name}/disable")
def disable_user(request: Request, name: str, csrf: str = Form(""), found: Caller = Depends(admin)) -> Response:
    check_csrf(found, csrf)
    api.disable_user(store_of(request), name, actor=found.principal.actor)
    return _back("/admin#users")


@router.post("/admin/users/{name}/password")
def set_password(
    request: Request, name: str, csrf: str = Form(""), password: str = Form(""), found: Caller = Depends(admin)
) -> Response:
    check_csrf(found, csrf)
    api.set_password(store_of(request), name, password, actor=found.principal.actor)
    return _back("/admin#users")


@router.post("/admin/tokens")
def create_token(
    request: Request,
    csrf: str = Form(""),
    name: str = Form(""),
    role: str = Form("viewer"),
    found: Caller = Depends(admin),
) -> Response:
    check_csrf(found, csrf)
    # owned by whoever made it: revoked when that account is disabled, removed or changes password
    owner = found.principal.account
    token, row = api.create_token(store_of(request), name.strip(), role, actor=found.principal.actor, owner=owner)
    return _accounts_page(request, new_token=token, token_name=row.get("name"))  # shown once, never stored


@router.post("/admin/tokens/{name}/revoke")
def revoke_token(request: Request, name: str, csrf: str = Form(""), found: Caller = Depends(admin)) -> Response:
    check_csrf(found, csrf)
    api.revoke_token(store_of(request), name, actor=found.principal.actor)
    return _back("/admin#tokens")
