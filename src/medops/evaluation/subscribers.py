"""Every run's event subscribers, in the order they must see a call: the PHI guard first (it
rewrites or refuses a call before anyone else sees it), then the audit trail, then the caller's, then
the preparation of the run's views as it ends (``PrepareViews``: last, so what the caller's print
or log of the run's end is not held up by it).
Shared by ``medops.api`` and the monitor (online grading and canaries are ordinary runs)."""

from __future__ import annotations

from collections.abc import Iterable

from medops.audit import AuditSubscriber
from medops.evaluation.prepared_views import PrepareViews
from medops.privacy.guard import PhiGuard
from medops.store.repository import Store


def run_subscribers(store: Store, subscribers: Iterable[object] = (), *, phi_policy: str | None = None) -> list[object]:
    """Every run's subscribers: the PHI guard first (it rewrites or refuses a call before anyone
    else sees it), then the audit trail, then the caller's (unless they bring their own of any of
    these), then the preparation of the run's dashboard views as it ends."""
    chosen = list(subscribers)
    if not any(isinstance(s, PrepareViews) for s in chosen):
        chosen.append(PrepareViews(store))
    if not any(isinstance(s, AuditSubscriber) for s in chosen):
        chosen.insert(0, AuditSubscriber(store))
    if not any(isinstance(s, PhiGuard) for s in chosen):
        chosen.insert(0, PhiGuard(phi_policy))
    return chosen
