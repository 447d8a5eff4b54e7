"""The audit trail: who ran, gated, exported, reported or pulled what, in a hash chain that shows
any later edit, deletion or reordering (``medops audit verify``), with anchors outside the
database that show truncation (``medops audit anchor``). See docs/PRIVACY.md."""

from medops.audit import anchors
from medops.audit.subscriber import AuditSubscriber
from medops.audit.trail import (
    Verification,
    actor,
    audit_key,
    export,
    flush,
    record,
    refused,
    verify,
    verify_events,
)

__all__ = [
    "AuditSubscriber",
    "Verification",
    "actor",
    "anchors",
    "audit_key",
    "export",
    "flush",
    "record",
    "refused",
    "verify",
    "verify_events",
]
