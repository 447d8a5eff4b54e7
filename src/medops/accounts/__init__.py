"""Who may use the dashboard and its API: users with Argon2-hashed passwords, API tokens, browser
sessions, roles, sign-in rate limits. Every sign-in, failed sign-in, token use and change to an
account is an audit event. See docs/DASHBOARD.md."""

from medops.accounts.roles import ROLES, AuthError, Principal, check_name
from medops.accounts.sessions import WebSession, close_session, open_session, session_principal
from medops.accounts.tokens import create_token, revoke_token, token_principal, tokens
from medops.accounts.users import (
    add_user,
    disable_user,
    login,
    remove_user,
    set_password,
    sso_failed,
    sso_login,
    users,
)

__all__ = [
    "ROLES",
    "AuthError",
    "Principal",
    "WebSession",
    "add_user",
    "check_name",
    "close_session",
    "create_token",
    "disable_user",
    "login",
    "open_session",
    "remove_user",
    "revoke_token",
    "session_principal",
    "set_password",
    "sso_failed",
    "sso_login",
    "token_principal",
    "tokens",
    "users",
]
