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
    for signed-in users (`medops users add`), and the same data as JSON under /api/."""
    import uvicorn

    from medops.web import create_app

    app = create_app(db, secure_cookies=secure_cookies)
    err.print(f"medops dashboard on http://{host}:{port}/ (Ctrl-C stops)")
    uvicorn.run(
        app,
        host=host,
        port=port,
        proxy_headers=True,
        forwarded_allow_ips=forwarded_allow_ips,
        log_level="warning",
        server_header=False,
    )
