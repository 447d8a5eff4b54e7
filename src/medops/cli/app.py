"""Entry point: sub-commands, and the rule that user errors exit 2 with one line, no traceback."""

from __future__ import annotations

import sys

import typer
from rich.markup import escape

from medops import __version__
from medops.cli import (
    accounts_cmd,
    audit_cmd,
    data_cmd,
    eval_cmd,
    export_cmd,
    mcqa_cmd,
    monitor_check_cmd,  # noqa: F401 (its commands register on monitor_cmd.app)
    monitor_cmd,
    monitor_quality_cmd,  # noqa: F401 (its commands register on monitor_cmd.app)
    monitor_traffic_cmd,
    ops_cmd,
    phi_cmd,
    report_cmd,
    review_cmd,
    rl_cmd,
    runs_cmd,
    serve_cmd,
    store_cmd,
)
from medops.cli.console import err, install_warning_printer
from medops.errors import UserError

app = typer.Typer(
    name="medops",
    help="Evaluate, gate, monitor and improve medical language models on your own machines.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(eval_cmd.app, name="eval")
app.add_typer(runs_cmd.app, name="runs")
app.add_typer(data_cmd.app, name="data")
app.add_typer(rl_cmd.app, name="rl")
app.add_typer(phi_cmd.app, name="phi")
app.add_typer(audit_cmd.app, name="audit")
app.add_typer(monitor_cmd.app, name="monitor")
app.add_typer(review_cmd.app, name="review")
app.add_typer(store_cmd.app, name="store")
app.add_typer(accounts_cmd.users_app, name="users")
app.add_typer(accounts_cmd.tokens_app, name="tokens")
app.command("export")(export_cmd.export)
app.command("meta-eval")(eval_cmd.meta_eval)
app.command("compare")(ops_cmd.compare)
app.command("gate")(ops_cmd.gate)
app.command("report")(report_cmd.report)
app.command("gateway")(monitor_traffic_cmd.gateway)
app.command("serve")(serve_cmd.serve)
eval_cmd.app.command("mcqa")(mcqa_cmd.eval_mcqa)
data_cmd.app.command("export")(mcqa_cmd.data_export)


def _version(value: bool) -> None:
    if value:
        print(f"medops {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    pass


def main() -> None:
    install_warning_printer()
    try:
        app()
    except UserError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
