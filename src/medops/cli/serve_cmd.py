"""``medops serve``: the dashboard and its JSON API (docs/DASHBOARD.md) on uvicorn."""

from __future__ import annotations

import typer

from medops.cli.console import err
from medops.cli.options import DB_OPTION


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8765, "--port", min=0, max=65535, help="Port to listen on."),
    secure_cookies: bool = typer.Option(
        None,
        "--secure-cookies/--no-secure-cookies",
        help="Mark cookies Secure always / never [default: when the request came over HTTPS].",
    ),
    forwarded_allow_ips: str = typer.Option(
        "127.0.0.1",
        "--forwarded-allow-ips",
        help="Proxies whose X-Forwarded-Proto / -For headers are trusted (comma-separated, or '*').",
    ),
    db: str = DB_OPTION,
) -> None:
    """Serve the dashboard: runs, examples, comparisons, gates, monitoring and audit in the browser,
    for signed-in users (`medops users add`), and the same data as JSON under /api/.
    Single sign-on (OpenID Connect) when MEDOPS_OIDC_ISSUER is set: see docs/DASHBOARD.md."""
    import uvicorn

    from medops.store.repository import Store
    from medops.web import create_app
    from medops.web.oidc import configure

    sso = configure()  # None without MEDOPS_OIDC_ISSUER; a bad configuration stops here (exit 2)
    # a reader: a mistyped --db is an error, not an empty dashboard nobody can sign in to
    app = create_app(Store.open(db, create=False), secure_cookies=secure_cookies, oidc=sso)
    err.print(f"medops dashboard on http://{host}:{port}/ (Ctrl-C stops)")
    if sso is not None:
        err.print(f"single sign-on through {sso.settings.issuer}")
    uvicorn.run(
        app,
        host=host,
        port=port,
        proxy_headers=True,
        forwarded_allow_ips=forwarded_allow_ips,
        log_level="warning",
        server_header=False,
    )
