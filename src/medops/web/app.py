"""The dashboard's FastAPI application: pages, ``/api/``, static assets, security headers.

``create_app(db)`` opens the store once; every route calls :mod:`medops.api` (no logic here but
who may see what). Served by ``medops serve`` (uvicorn)."""

from __future__ import annotations

from importlib.resources import files
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from medops import __version__, api
from medops.errors import NotFound, UserError
from medops.web.auth import Forbidden, NotSignedIn
from medops.web.jobs import Jobs
from medops.web.render import render

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def _is_api(request: Request) -> bool:
    return request.url.path == "/api" or request.url.path.startswith("/api/")


def _status_of(exc: UserError) -> int:
    if isinstance(exc, api.AuthError):
        return exc.status
    return 404 if isinstance(exc, NotFound) else 400


def create_app(db: Any = None, *, secure_cookies: bool | None = None, oidc: Any = None) -> FastAPI:
    """The dashboard over the store ``db`` (a path, URL or open Store). ``secure_cookies``: mark
    cookies Secure always (True), never (False), or when the request arrived over HTTPS (None;
    behind a proxy, uvicorn's ``--forwarded-allow-ips`` makes X-Forwarded-Proto count).
    ``oidc``: single sign-on (``medops.web.oidc.configure()``); None: no SSO routes at all."""
    app = FastAPI(
        title="medops dashboard API",
        version=__version__,
        description="The JSON behind every dashboard page. Authenticate with `Authorization: Bearer <token>` "
        "(`medops tokens create`) or a dashboard session cookie (then send `X-CSRF-Token` on POST).",
        docs_url=None,  # Swagger UI and ReDoc load scripts from CDNs: not on an air-gapped network
        redoc_url=None,
        openapi_url=None,  # served under /api/openapi.json to signed-in callers (routes_api)
    )
    app.state.store = api.open_store(db)
    app.state.secure_cookies = secure_cookies
    app.state.jobs = Jobs(app.state.store)
    app.state.oidc = oidc

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")  # pages may hold patient text
        return response

    @app.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, exc: NotSignedIn) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": exc.message}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": exc.message}, status_code=403)
        return render(request, "error.j2", status=403, title="Not allowed", message=exc.message)

    @app.exception_handler(UserError)
    async def user_error(request: Request, exc: UserError) -> Response:
        status = _status_of(exc)
        if _is_api(request):
            return JSONResponse({"detail": str(exc)}, status_code=status)
        title = "Not found" if status == 404 else "Cannot show this"
        return render(request, "error.j2", status=status, title=title, message=str(exc))

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> Response:
        """For container HEALTHCHECKs and Kubernetes probes (deploy/): no sign-in, no data."""
        return JSONResponse({"status": "ok"})

    from medops.web import pages, routes_api

    app.include_router(routes_api.router)
    app.include_router(pages.router)
    if oidc is not None:
        from medops.web import oidc as single_sign_on

        app.include_router(single_sign_on.router)
    app.mount("/static", StaticFiles(directory=str(files("medops.web").joinpath("static"))), name="static")
    return app
