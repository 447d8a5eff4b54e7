"""PHI detection and redaction (Presidio with medops's recognizers; offline, nothing downloaded).

    from medops.privacy import PhiUnavailable, Redactor, detect, missing_components

    missing_components()  # None when detection works, else one line naming what to pip install
    detect(text)          # [Entity(type, start, end, score)], sorted, non-overlapping
    r = Redactor()        # one per conversation
    r.redact(text)        # "[PERSON_1] ... [PHONE_NUMBER_1]", consistent within this Redactor
    r.counts              # {"PERSON": 2, ...}: entities redacted so far, by type

Presidio is imported on first use, not on ``import medops.privacy``.
"""

from __future__ import annotations

from medops.privacy.engine import Entity, PhiUnavailable, detect, load_config, missing_components
from medops.privacy.recognizers import ENTITY_TYPES, STRUCTURED
from medops.privacy.redact import Redactor

__all__ = [
    "ENTITY_TYPES",
    "STRUCTURED",
    "Entity",
    "PhiUnavailable",
    "Redactor",
    "detect",
    "load_config",
    "missing_components",
]
