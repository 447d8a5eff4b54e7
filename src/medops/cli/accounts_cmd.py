"""``medops users ...`` and ``medops tokens ...``: the dashboard's accounts and API tokens."""

from __future__ import annotations

import json
import sys

import typer
from rich.markup import escape
from rich.table import Table

from medops import api
from medops.audit import actor
from medops.cli.console import out
from medops.cli.options import DB_OPTION, JSON_OPTION
from medops.errors import UserError

users_app = typer.Typer(help="Dashboard users (see docs/DASHBOARD.md).", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens for the dashboard's /api/ (see docs/DASHBOARD.md).", no_args_is_help=True)
ROLE_HELP = (
    "viewer (scores, redacted examples), reviewer (also labels review sets), operator (also alerts, canaries,"
    " adjudication) or admin (everything)."
)


def _password(from_stdin: bool) -> str:
    """The new password: the first line of standard input, or typed twice at a prompt."""
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise UserError("--password-stdin: standard input has no password")
        return line
    if not sys.stdin.isatty():
        raise UserError("no terminal to ask for the password: use --password-stdin")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


def _table(rows: list[dict], columns: list[str]) -> None:
    table = Table(show_edge=False)
    for column in columns:
        table.add_column(column.replace("_", " "))
    for row in rows:
        table.add_row(*(escape("" if row[c] is None else str(row[c])) for c in columns))
    out.print(table)


@users_app.command("add")
def users_add(
    name: str = typer.Argument(..., help="The sign-in name."),
    role: str = typer.Option(..., "--role", help=ROLE_HELP),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from standard input."),
    db: str = DB_OPTION,
) -> None:
    """Create a user; the password is asked for (twice) or read from standard input."""
    store = api.open_store(db)
    if role not in api.ROLES:  # before asking for a password
        raise UserError(f"unknown role {role!r}: use one of {', '.join(api.ROLES)}")
    api.add_user(store, name, role, _password(password_stdin), actor=actor())
    out.print(f"user {escape(name)} added as {role}")


@users_app.command("list")
def users_list(db: str = DB_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Every user: role, disabled, created, last sign-in."""
    found = api.users(api.open_store(db, create=False))
    if as_json:
        print(json.dumps(found, ensure_ascii=False))
    elif not found:
        out.print("no users yet: medops users add NAME --role admin")
    else:
        _table(found, ["name", "role", "disabled", "created_at", "created_by", "last_login_at"])


@users_app.command("disable")
def users_disable(name: str = typer.Argument(...), db: str = DB_OPTION) -> None:
    """Disable a user: they can no longer sign in, their open sessions end, the tokens they own are revoked."""
    api.disable_user(api.open_store(db, create=False), name, actor=actor())
    out.print(f"user {escape(name)} disabled")


@users_app.command("remove")
def users_remove(name: str = typer.Argument(...), db: str = DB_OPTION) -> None:
    """Remove a user: their tokens are revoked and their sessions end; what they did stays in the
    audit trail."""
    api.remove_user(api.open_store(db, create=False), name, actor=actor())
    out.print(f"user {escape(name)} removed")


@users_app.command("passwd")
def users_passwd(
    name: str = typer.Argument(...),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from standard input."),
    db: str = DB_OPTION,
) -> None:
    """Set a user's password (their open sessions end and the tokens they own are revoked)."""
    store = api.open_store(db)
    api.set_password(store, name, _password(password_stdin), actor=actor())
    out.print(f"password of {escape(name)} changed")


@tokens_app.command("create")
def tokens_create(
    name: str = typer.Option(..., "--name", help="What the token is for (unique), e.g. ci-gate."),
    role: str = typer.Option(..., "--role", help=ROLE_HELP),
    user: str = typer.Option(None, "--user", help="The token acts for this user (role at most theirs)."),
    owner: str = typer.Option(None, "--owner", help="A service token owned by this admin."),
    db: str = DB_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Issue a token and print it once: only its hash is kept. Send it as ``Authorization: Bearer``.
    A token for --user or owned by --owner is revoked when that account is disabled, removed or
    changes password; without either it is the site's (revoked only by ``medops tokens revoke``)."""
    token, _ = api.create_token(api.open_store(db), name, role, actor=actor(), user=user, owner=owner)
    if as_json:
        print(json.dumps({"token": token}))
    else:
        print(token)


@tokens_app.command("list")
def tokens_list(db: str = DB_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Every token issued (never the token itself): role, created, last used, revoked."""
    found = api.tokens(api.open_store(db, create=False))
    if as_json:
        print(json.dumps(found, ensure_ascii=False))
    elif not found:
        out.print("no tokens yet: medops tokens create --name NAME --role viewer")
    else:
        _table(found, ["id", "name", "role", "kind", "owner", "created_at", "created_by", "last_used_at", "revoked_at"])


@tokens_app.command("revoke")
def tokens_revoke(name: str = typer.Argument(..., help="The token's name."), db: str = DB_OPTION) -> None:
    """Revoke a token: it is refused from the next request on."""
    api.revoke_token(api.open_store(db, create=False), name, actor=actor())
    out.print(f"token {escape(name)} revoked")
