"""The PHI policy at the call boundary: a before-call subscriber, so no pipeline knows about it.

Every endpoint is *internal* (an in-process model, loopback, a private network, a host listed in
``MEDOPS_INTERNAL_HOSTS``) or *external*. The policy is ``redact`` (no detected identifier
leaves: each is replaced by a typed placeholder, consistent within the request), ``block`` (a
request holding PHI is not sent: the call fails, is counted and is retried by ``--resume``)
or ``allow``. Given explicitly (``--phi-policy``, ``MEDOPS_PHI_POLICY``), a policy applies to
every endpoint; left out, external endpoints get ``redact`` and internal ones ``allow``.

What was done is noted on the call (``notes["phi"]``: the policy, the endpoint class and the
number of entities of each type) and stored with the call's row; never the values. The cache
keys on what was actually sent. Detection that cannot run fails closed: a call that the
policy would have to inspect is refused with one line naming what to install.
"""

from __future__ import annotations

import ipaddress
import os
from typing import Any
from urllib.parse import urlsplit

from medops.errors import UserError
from medops.events import BeforeCall

POLICIES = ("redact", "block", "allow")
POLICY_ENV = "MEDOPS_PHI_POLICY"
INTERNAL_HOSTS_ENV = "MEDOPS_INTERNAL_HOSTS"


def chosen_policy(flag: str | None) -> str | None:
    """The explicit policy: the flag, else ``MEDOPS_PHI_POLICY``, else None (decided per endpoint)."""
    policy = flag or os.environ.get(POLICY_ENV) or None
    if policy is not None and policy not in POLICIES:
        source = "--phi-policy" if flag else POLICY_ENV
        raise UserError(f"{source} must be one of {', '.join(POLICIES)}, not '{policy}'")
    return policy


def internal_hosts() -> set[str]:
    """Hosts the site declares internal (``MEDOPS_INTERNAL_HOSTS=gpu1.hospital.local,10.2.0.0/16``)."""
    return {h.strip().lower() for h in os.environ.get(INTERNAL_HOSTS_ENV, "").split(",") if h.strip()}


def is_internal(endpoint: dict[str, Any], in_process: bool, declared: set[str] | None = None) -> bool:
    """Whether requests to ``endpoint`` stay inside the building: in process, loopback, a private
    or link-local address, or a host (or network) the site declared internal."""
    if in_process:
        return True
    url = endpoint.get("endpoint") or endpoint.get("base_url")
    if not url:
        return False
    host = (urlsplit(str(url)).hostname or "").lower()
    declared = internal_hosts() if declared is None else declared
    if not host:
        return False
    if host == "localhost" or host in declared:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False  # a name we cannot place without DNS: external unless declared
    if address.is_loopback or address.is_private or address.is_link_local:
        return True
    for entry in declared:
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


class PhiGuard:
    """Applies the PHI policy to every model and grader request of a run (a bus subscriber)."""

    def __init__(self, policy: str | None = None):
        self.policy = chosen_policy(policy)
        self._declared = internal_hosts()

    def before_call(self, event: BeforeCall) -> None:
        internal = is_internal(event.endpoint, event.in_process, self._declared)
        policy = self.policy or ("allow" if internal else "redact")
        note: dict[str, Any] = {"policy": policy, "endpoint": "internal" if internal else "external"}
        event.notes["phi"] = note
        if policy == "allow":
            return
        from medops.privacy import Redactor, missing_components

        missing = missing_components()
        if missing is not None:  # fail closed
            event.refuse(f"PHI detection is unavailable ({missing}); or choose --phi-policy allow")
            return
        redactor = Redactor()
        redacted = [{**m, "content": redactor.redact(m["content"])} if m.get("content") else m for m in event.messages]
        counts = {kind: n for kind, n in sorted(redactor.counts.items()) if n}
        note["entities"] = counts
        if policy == "block":
            if counts:
                found = ", ".join(f"{n} {kind}" for kind, n in counts.items())
                event.refuse(f"PHI in the request ({found}) and --phi-policy block")
            return
        event.messages = redacted
