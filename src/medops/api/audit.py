"""The audit trail for the dashboard: its newest events and the verification of the chain."""

from __future__ import annotations

from typing import Any

from medops.api.formatting import iso
from medops.api.runs import StoreRef, open_store
from medops.audit import verify
from medops.audit.trail import events as trail_events


def audit_events(*, db: StoreRef = None, last: int | None = 500, action: str | None = None) -> dict[str, Any]:
    """The audit trail's newest events (newest first; ``action`` narrows by prefix, e.g. ``user.``)
    and the verification of the whole chain."""
    store = open_store(db)
    chosen = [
        {**e, "time": iso(e["time"])}
        for e in reversed(trail_events(store, last=None if action else last))
        if action is None or e["action"].startswith(action)
    ]
    return {"verification": verify(store).to_dict(), "events": chosen[:last] if last else chosen}
