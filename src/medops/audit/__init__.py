"""The audit trail: who ran, gated, exported, reported or pulled what, in a hash chain that shows
any later edit, deletion or reordering (``medops audit verify``). See docs/PRIVACY.md."""

from medops.audit.subscriber import AuditSubscriber
from medops.audit.trail import Verification, actor, audit_key, export, record, verify, verify_events

__all__ = ["AuditSubscriber", "Verification", "actor", "audit_key", "export", "record", "verify", "verify_events"]
