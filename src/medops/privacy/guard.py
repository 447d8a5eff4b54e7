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

Image parts (and any other non-text part) cannot be redacted: ``block`` refuses a request that
holds one; ``redact`` sends it only where the site has set ``MEDOPS_PHI_IMAGES_LEAVE=allow``
(otherwise refused, naming the setting); ``allow`` sends it. Text parts, names and tool-call
arguments are redacted like any text (``medops.content.map_messages``, the one walker).
"""

from __future__ import annotations

import ipaddress
import os
from typing import Any
from urllib.parse import urlsplit

from medops.content import image_parts, map_messages
from medops.errors import UserError
from medops.events import BeforeCall

POLICIES = ("redact", "block", "allow")
POLICY_ENV = "MEDOPS_PHI_POLICY"
INTERNAL_HOSTS_ENV = "MEDOPS_INTERNAL_HOSTS"
IMAGES_ENV = "MEDOPS_PHI_IMAGES_LEAVE"  # "allow": under redact, image parts may be sent (they cannot be redacted)


def images_may_leave() -> bool:
    """Whether the site lets image parts leave under ``redact`` (``MEDOPS_PHI_IMAGES_LEAVE``)."""
    value = os.environ.get(IMAGES_ENV, "").strip().lower()
    if value not in ("", "allow", "refuse"):
        raise UserError(f"{IMAGES_ENV} must be allow or refuse, not '{value}'")
    return value == "allow"


def refuse_images(policy: str, n_images: int) -> str | None:
    """Why ``n_images`` image parts may not be sent under ``policy``, or None when they may."""
    if n_images == 0 or policy == "allow":
        return None
    if policy == "block":
        return f"{n_images} image part(s) in the request cannot be checked for PHI and --phi-policy block"
    if images_may_leave():
        return None
    return (
        f"{n_images} image part(s) in the request cannot be redacted; --phi-policy redact sends images only "
        f"where the site sets {IMAGES_ENV}=allow"
    )


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
        self._internal: dict[tuple[str, bool], bool] = {}
        images_may_leave()  # a misspelt setting is refused when the run starts, not on the first image

    def before_call(self, event: BeforeCall) -> None:
        # an endpoint's place is decided once per run (it is asked before every call: a URL parse and
        # an address parse each time were a measurable share of the loop's CPU per call)
        where = (str(event.endpoint.get("endpoint") or event.endpoint.get("base_url") or ""), event.in_process)
        internal = self._internal.get(where)
        if internal is None:
            internal = self._internal[where] = is_internal(event.endpoint, event.in_process, self._declared)
        policy = self.policy or ("allow" if internal else "redact")
        note: dict[str, Any] = {"policy": policy, "endpoint": "internal" if internal else "external"}
        event.notes["phi"] = note
        if policy == "allow":
            return
        n_images = sum(1 for _ in image_parts(event.messages))
        if n_images:
            note["images"] = n_images
        if (why := refuse_images(policy, n_images)) is not None:
            event.refuse(why)
            return
        from medops.privacy import Redactor, missing_components

        missing = missing_components()
        if missing is not None:  # fail closed
            event.refuse(f"PHI detection is unavailable ({missing}); or choose --phi-policy allow")
            return
        redactor = Redactor()
        redacted = map_messages(event.messages, redactor.redact)
        counts = {kind: n for kind, n in sorted(redactor.counts.items()) if n}
        note["entities"] = counts
        if policy == "block":
            if counts:
                found = ", ".join(f"{n} {kind}" for kind, n in counts.items())
                event.refuse(f"PHI in the request ({found}) and --phi-policy block")
            return
        event.messages = redacted
