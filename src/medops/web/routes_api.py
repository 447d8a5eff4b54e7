"""``/api/``: the JSON behind every page (documented by ``/api/openapi.json``). Every route
needs a signed-in caller; the role each needs is in its description."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel

from medops import api
from medops.web.auth import Caller, admin, api_write, operator, store_of, viewer

router = APIRouter(prefix="/api", tags=["api"])
Json = dict[str, Any]


def _principal(found: Caller) -> Json:
    p = found.principal
    return {"kind": p.kind, "name": p.name, "role": p.role, "actor": p.actor}


@router.get("/openapi.json", include_in_schema=False)
def openapi(request: Request, found: Caller = Depends(viewer)) -> Json:
    return request.app.openapi()


@router.get("/me", summary="Who is calling (viewer)")
def me(found: Caller = Depends(viewer)) -> Json:
    return _principal(found)


@router.get("/runs", summary="Runs, newest first, filtered (viewer)")
def runs(
    request: Request,
    benchmark: str | None = None,
    model: str | None = None,
    dataset: str | None = None,
    status: str | None = None,
    since: str | None = Query(None, description="created on or after: a date (2025-05-07) or ISO time"),
    until: str | None = Query(None, description="created on or before: a date or ISO time"),
    q: str | None = Query(None, description="text in the id, name, benchmark, dataset, model or grader"),
    found: Caller = Depends(viewer),
) -> list[Json]:
    return api.runs_filtered(
        store_of(request),
        benchmark=benchmark,
        model=model,
        dataset=dataset,
        status=status,
        since=since,
        until=until,
        search=q,
    )


@router.get("/runs/{ref}", summary="One run: its document and metrics with 95% intervals (viewer)")
def run(request: Request, ref: str, found: Caller = Depends(viewer)) -> Json:
    detail = api.run_detail(ref, db=store_of(request))
    return {"run": detail["run"], "metrics": detail["metrics"]}


@router.get(
    "/runs/{ref}/examples",
    summary="A page of a run's examples with verdicts, or its wrong exam answers (viewer; redacted unless admin)",
)
def examples(
    request: Request,
    ref: str,
    flag: str = Query("all", description="all, failed, negative_met or ungraded"),
    offset: int = Query(0, ge=0),
    limit: int = Query(50, ge=1, le=500),
    found: Caller = Depends(viewer),
) -> Json:
    p = found.principal
    return api.run_examples(
        ref, db=store_of(request), redact=not p.can("admin"), flag=flag, offset=offset, limit=limit, actor=p.actor
    )


@router.get("/runs/{ref}/examples/{index}", summary="One example of a run (viewer; redacted unless admin)")
def example(request: Request, ref: str, index: int, repeat: int = 0, found: Caller = Depends(viewer)) -> Json:
    p = found.principal
    return api.run_example(ref, index, repeat=repeat, db=store_of(request), redact=not p.can("admin"), actor=p.actor)


@router.get("/compare", summary="Paired comparison of two runs: differences, intervals, p-values (viewer)")
def compare(request: Request, baseline: str, candidate: str, found: Caller = Depends(viewer)) -> Json:
    return api.compare(baseline, candidate, db=store_of(request))


@router.get("/gates", summary="Gate decisions, newest first, each rule with its outcome (viewer)")
def gates(request: Request, run: str | None = None, found: Caller = Depends(viewer)) -> list[Json]:
    return api.gate_history(db=store_of(request), run_ref=run or None)


@router.get("/monitoring", summary="Online and canary score series, drift table, alerts (viewer)")
def monitoring(
    request: Request,
    since: str | None = Query(None, description="points whose window starts on or after (date or ISO time)"),
    window: str = Query("1d", description="drift: the current window"),
    reference: str = Query("7d", description="drift: the reference before it"),
    found: Caller = Depends(viewer),
) -> Json:
    return api.monitoring(db=store_of(request), since=since, window=window, reference=reference)


@router.get("/alerts", summary="Fired alerts, newest first, with acknowledgements (viewer)")
def alerts(request: Request, limit: int = Query(200, ge=1, le=5000), found: Caller = Depends(viewer)) -> list[Json]:
    return api.alerts(db=store_of(request), limit=limit)


@router.post("/alerts/{alert_id}/acknowledge", summary="Acknowledge an alert (operator)")
def acknowledge(request: Request, alert_id: int, found: Caller = Depends(api_write("operator"))) -> Json:
    api.acknowledge_alert(store_of(request), alert_id, actor=found.principal.actor)
    return {"acknowledged": alert_id}


class CanaryRequest(BaseModel):
    data: str
    model: str
    grader: str | None = None
    task: str | None = None
    baseline: str | None = None
    model_base_url: str | None = None
    grader_base_url: str | None = None
    limit: int | None = None


@router.post("/canary", summary="Start a canary round in the background (operator)", status_code=202)
def start_canary(request: Request, body: CanaryRequest, found: Caller = Depends(api_write("operator"))) -> Json:
    job = request.app.state.jobs.start(body.model_dump(), actor=found.principal.actor)
    job.started.wait(timeout=5)
    return job.to_dict()


@router.get("/canary", summary="Canary rounds started from this server, newest first (operator)")
def canary_jobs(request: Request, found: Caller = Depends(operator)) -> list[Json]:
    return [job.to_dict() for job in request.app.state.jobs.list()]


@router.get("/canary/{job_id}", summary="One canary round started from this server (operator)")
def canary_job(request: Request, job_id: int, found: Caller = Depends(operator)) -> Json:
    job = request.app.state.jobs.get(job_id)
    if job is None:
        raise HTTPException(404, f"no canary job {job_id} on this server")
    return job.to_dict()


@router.get("/datasets", summary="Datasets by sha256 with their rows and the runs using them (viewer)")
def datasets(request: Request, found: Caller = Depends(viewer)) -> list[Json]:
    return api.datasets(db=store_of(request))


@router.get("/audit", summary="The audit trail, newest first, and its verification (admin)")
def audit(
    request: Request,
    last: int = Query(500, ge=1, le=100000),
    action: str | None = Query(None, description="an action or its prefix: user., gate.decision"),
    found: Caller = Depends(admin),
) -> Json:
    return api.audit_events(db=store_of(request), last=last, action=action or None)


@router.get("/users", summary="Dashboard users (admin)")
def users(request: Request, found: Caller = Depends(admin)) -> list[Json]:
    return api.users(store_of(request))


@router.get("/tokens", summary="API tokens, never the token itself (admin)")
def tokens(request: Request, found: Caller = Depends(admin)) -> list[Json]:
    return api.tokens(store_of(request))
