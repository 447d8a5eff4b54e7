"""Roles, the authenticated caller, and the error a refused caller gets."""

from __future__ import annotations

import re
from dataclasses import dataclass

from medops.errors import UserError

# Ranked: each role may do everything the roles before it may. A reviewer (a physician) sees what
# a viewer sees and labels review sets; operators and admins may label too, and adjudicate.
ROLES = ("viewer", "reviewer", "operator", "admin")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,99}")


class AuthError(UserError):
    """A caller refused: ``status`` 401 (who are you?), 403 (not allowed) or 429 (too many tries).
    The message is safe to show: it never says whether an account exists."""

    def __init__(self, message: str, status: int = 401):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Principal:
    """Who a request acts for: a signed-in user or an API token, with its role."""

    kind: str  # "user" | "token"
    id: int
    name: str
    role: str
    owner: str | None = None  # a token's account (None: a site token, made from the shell)

    @property
    def account(self) -> str | None:
        """The dashboard account this caller answers to: the user, or the token's owner."""
        return self.name if self.kind == "user" else self.owner

    @property
    def actor(self) -> str:
        """The audit trail's name for this caller."""
        return f"user:{self.name}" if self.kind == "user" else f"token:{self.id}"

    def can(self, role: str) -> bool:
        """Whether this caller has ``role`` or a higher one."""
        return ROLES.index(self.role) >= ROLES.index(check_role(role))


def check_role(role: str) -> str:
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    return role


def rank(role: str) -> int:
    return ROLES.index(check_role(role))


def check_name(name: str, what: str) -> str:
    if not NAME.fullmatch(name):
        raise UserError(f"{what} name {name!r}: use 1-100 letters, digits or . _ @ - (a letter or digit first)")
    return name
