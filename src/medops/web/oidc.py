"""Single sign-on through OpenID Connect (Keycloak, Azure AD, any certified provider), optional.

Configured by environment (docs/DASHBOARD.md): ``MEDOPS_OIDC_ISSUER`` (discovery at
``<issuer>/.well-known/openid-configuration``), ``MEDOPS_OIDC_CLIENT_ID``,
``MEDOPS_OIDC_CLIENT_SECRET``, ``MEDOPS_OIDC_ROLE_MAP`` (``idp-role=medops-role,...``),
``MEDOPS_OIDC_ROLE_CLAIM`` (default ``roles``; a dotted path reaches nested claims such as
Keycloak's ``realm_access.roles``), ``MEDOPS_OIDC_USERNAME_CLAIM`` (default
``preferred_username``), ``MEDOPS_OIDC_REDIRECT_URI`` (optional: the callback's public address
when the proxy does not pass the Host header). Without an issuer nothing here is used and the
routes do not exist. A bad configuration, a provider that cannot be reached at start or authlib
missing is a :class:`UserError` from :func:`configure`, raised by ``medops serve`` before it listens.

The flow is the authorization code flow with PKCE (S256), ``state`` and ``nonce``; the protocol
(authorization URL, token request, the id_token's signature against the provider's JWKS, ``iss``,
``aud``, ``exp``, ``iat``, ``nonce``, ``at_hash``) is authlib's. What is pending between the
redirect to the provider and its callback (state, nonce, PKCE verifier, where to go next) lives in
a short-lived HttpOnly cookie encrypted and authenticated with AES-GCM under a key derived from
the client secret, so every ``medops serve`` process sharing the configuration accepts it and
nothing in the store is needed. authlib is imported only when an issuer is configured
(``pip install 'medops[sso]'``)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from medops import api
from medops.errors import UserError
from medops.web.auth import SESSION_COOKIE
from medops.web.pages import _back, _login_page, _safe_next, _secure

ENV = "MEDOPS_OIDC_"
CALLBACK_PATH = "/login/oidc/callback"
STATE_COOKIE = "medops_oidc"
STATE_LIFETIME = 600  # seconds between leaving for the provider and coming back
LEEWAY = 60  # seconds of clock skew allowed on exp / iat
SCOPE = "openid profile email"
# id_token signatures medops accepts: asymmetric only (the keys come from the provider's JWKS)
SIGNING_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
INSTALL = "pip install 'medops[sso]'"


@dataclass(frozen=True)
class Settings:
    issuer: str
    client_id: str
    client_secret: str
    role_map: dict[str, str]  # the provider's role -> a medops role
    role_claim: str = "roles"
    username_claim: str = "preferred_username"
    redirect_uri: str | None = None

    def role_of(self, claims: Mapping[str, Any]) -> str | None:
        """The highest medops role that one of the user's provider roles maps to (None: none)."""
        given = claim_at(claims, self.role_claim)
        if isinstance(given, str):
            given = given.split()
        if not isinstance(given, list | tuple):
            return None
        mapped = {self.role_map[r] for r in given if isinstance(r, str) and r in self.role_map}
        return max(mapped, key=api.ROLES.index) if mapped else None


def claim_at(claims: Mapping[str, Any], path: str) -> Any:
    """A claim by name, or by a dotted path into nested objects (``realm_access.roles``); a name
    that exists as is (Azure AD's URLs, names with dots) wins over the path."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def parse_role_map(text: str) -> dict[str, str]:
    """``medops-admin=admin,medops-operator=operator`` -> {provider role: medops role}."""
    found: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        provider_role, sep, role = (part.strip() for part in item.partition("="))
        if not sep or not provider_role or role not in api.ROLES:
            raise UserError(
                f"{ENV}ROLE_MAP: {item.strip()!r} is not provider-role=medops-role (one of {', '.join(api.ROLES)})"
            )
        found[provider_role] = role
    if not found:
        raise UserError(f"{ENV}ROLE_MAP is empty: map at least one provider role, e.g. medops-viewer=viewer")
    return found


def settings_from_env(environ: Mapping[str, str] | None = None) -> Settings | None:
    """The configuration, or None when ``MEDOPS_OIDC_ISSUER`` is not set (single sign-on off)."""
    env = os.environ if environ is None else environ

    def get(name: str, default: str = "") -> str:
        return (env.get(ENV + name) or default).strip()

    issuer = get("ISSUER").rstrip("/")
    if not issuer:
        return None
    parsed = urlparse(issuer)
    local = parsed.hostname in ("localhost", "127.0.0.1", "::1")
    if parsed.scheme not in ("https", "http") or not parsed.hostname or (parsed.scheme == "http" and not local):
        raise UserError(f"{ENV}ISSUER must be an https:// URL (http:// only on loopback), not {issuer!r}")
    missing = [ENV + name for name in ("CLIENT_ID", "CLIENT_SECRET", "ROLE_MAP") if not get(name)]
    if missing:
        raise UserError(f"single sign-on is configured ({ENV}ISSUER) but {', '.join(missing)} is not set")
    redirect_uri = get("REDIRECT_URI") or None
    if redirect_uri and (urlparse(redirect_uri).scheme not in ("https", "http") or not urlparse(redirect_uri).netloc):
        raise UserError(f"{ENV}REDIRECT_URI must be an absolute URL ending in {CALLBACK_PATH}, not {redirect_uri!r}")
    return Settings(
        issuer=issuer,
        client_id=get("CLIENT_ID"),
        client_secret=get("CLIENT_SECRET"),
        role_map=parse_role_map(get("ROLE_MAP")),
        role_claim=get("ROLE_CLAIM", "roles"),
        username_claim=get("USERNAME_CLAIM", "preferred_username"),
        redirect_uri=redirect_uri,
    )


def _authlib() -> Any:
    try:
        from authlib.integrations.base_client import BaseApp, OAuth2Mixin, OpenIDMixin
        from authlib.integrations.httpx_client import OAuth2Client
    except ImportError:
        raise UserError(f"single sign-on ({ENV}ISSUER) needs authlib: {INSTALL}") from None

    class Client(OAuth2Mixin, OpenIDMixin, BaseApp):
        """authlib's OpenID Connect client without a web framework: medops keeps the pending
        state itself (see :class:`SingleSignOn`)."""

        client_cls = OAuth2Client

    return Client


@dataclass
class SingleSignOn:
    """A configured provider: its discovery document loaded, authlib's client ready."""

    settings: Settings
    client: Any = field(repr=False)
    _key: bytes = field(repr=False, default=b"")

    def __post_init__(self) -> None:
        self._key = hashlib.sha256(b"medops oidc state\0" + self.settings.client_secret.encode()).digest()

    # --- the pending sign-in, in an encrypted cookie ------------------------------------------

    def seal(self, pending: dict[str, Any]) -> str:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        nonce = secrets.token_bytes(12)
        body = json.dumps({**pending, "exp": int(time.time()) + STATE_LIFETIME}).encode()
        sealed = nonce + AESGCM(self._key).encrypt(nonce, body, STATE_COOKIE.encode())
        return base64.urlsafe_b64encode(sealed).decode().rstrip("=")

    def unseal(self, cookie: str | None) -> dict[str, Any] | None:
        """The pending sign-in, or None when the cookie is missing, altered or expired."""
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if not cookie:
            return None
        try:
            raw = base64.urlsafe_b64decode(cookie + "=" * (-len(cookie) % 4))
            pending = json.loads(AESGCM(self._key).decrypt(raw[:12], raw[12:], STATE_COOKIE.encode()))
        except (ValueError, InvalidTag):
            return None
        if not isinstance(pending, dict) or pending.get("exp", 0) < time.time():
            return None
        return pending

    # --- the protocol (authlib) ---------------------------------------------------------------

    def start(self, redirect_uri: str) -> dict[str, Any]:
        """The provider's authorization URL with a fresh state, nonce and PKCE S256 challenge;
        returns {url, state, nonce, code_verifier}."""
        return self.client.create_authorization_url(redirect_uri)

    def finish(self, *, code: str, redirect_uri: str, code_verifier: str, nonce: str) -> dict[str, Any]:
        """Exchange the code (client secret and PKCE verifier) and verify the id_token: its
        signature against the provider's keys, iss, aud, exp, iat, nonce. Its claims, or raises."""
        token = self.client.fetch_access_token(redirect_uri=redirect_uri, code=code, code_verifier=code_verifier)
        if "id_token" not in token:
            raise ValueError("the provider answered without an id_token")
        # iss and aud named explicitly: authlib checks aud only when told (else only through azp)
        options = {
            "iss": {"essential": True, "values": [self.client.server_metadata["issuer"]]},
            "aud": {"essential": True, "values": [self.settings.client_id]},
        }
        claims = self.client.parse_id_token(token, nonce=nonce, claims_options=options, leeway=LEEWAY)
        return dict(claims)


def connect(settings: Settings) -> SingleSignOn:
    """Load the provider's discovery document (one line of error when it cannot be used)."""
    client_cls = _authlib()
    discovery = settings.issuer + "/.well-known/openid-configuration"
    client = client_cls(
        None,
        name="oidc",
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        server_metadata_url=discovery,
        client_kwargs={"scope": SCOPE, "code_challenge_method": "S256", "timeout": 10},
    )
    try:
        metadata = client.load_server_metadata()
    except Exception as exc:  # any transport, HTTP or JSON error: one line, at start
        why = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise UserError(f"single sign-on: cannot read {discovery}: {why}") from None
    if str(metadata.get("issuer", "")).rstrip("/") != settings.issuer:
        raise UserError(
            f"single sign-on: {discovery} names the issuer {metadata.get('issuer')!r}, not {settings.issuer!r} "
            f"({ENV}ISSUER must be exactly the provider's issuer)"
        )
    absent = [key for key in ("authorization_endpoint", "token_endpoint", "jwks_uri") if not metadata.get(key)]
    if absent:
        raise UserError(f"single sign-on: {discovery} has no {', '.join(absent)}")
    challenges = metadata.get("code_challenge_methods_supported")
    if challenges is not None and "S256" not in challenges:
        raise UserError(f"single sign-on: the provider does not support PKCE S256 ({discovery})")
    algs = [a for a in metadata.get("id_token_signing_alg_values_supported") or ["RS256"] if a in SIGNING_ALGS]
    metadata["id_token_signing_alg_values_supported"] = algs or ["RS256"]
    methods = metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    if "client_secret_basic" not in methods and "client_secret_post" in methods:
        client.client_kwargs["token_endpoint_auth_method"] = "client_secret_post"
    return SingleSignOn(settings, client)


def configure(environ: Mapping[str, str] | None = None) -> SingleSignOn | None:
    """Single sign-on from the environment: None when ``MEDOPS_OIDC_ISSUER`` is not set; raises a
    one-line UserError for a bad configuration (``medops serve`` exits 2)."""
    settings = settings_from_env(environ)
    return None if settings is None else connect(settings)


# --- routes (included only when configured) ---------------------------------------------------

router = APIRouter(include_in_schema=False)


def _sso(request: Request) -> SingleSignOn:
    return request.app.state.oidc


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _redirect_uri(request: Request) -> str:
    return _sso(request).settings.redirect_uri or str(request.url_for("oidc_callback"))


def _refused(request: Request, reason: str, message: str, *, status: int, name: str | None = None) -> Response:
    """Audit a refused single sign-on and show the sign-in page with why."""
    sso = _sso(request)
    store = request.app.state.store
    api.sso_failed(store, name, reason, issuer=sso.settings.issuer, client=_client(request))
    response = _login_page(request, next_path="/runs", error=message, status=status)
    response.delete_cookie(STATE_COOKIE, path="/login/oidc")
    return response


@router.get("/login/oidc")
def oidc_start(request: Request, next: str | None = None) -> Response:
    sso = _sso(request)
    redirect_uri = _redirect_uri(request)
    begun = sso.start(redirect_uri)
    pending = {
        "state": begun["state"],
        "nonce": begun["nonce"],
        "verifier": begun["code_verifier"],
        "redirect_uri": redirect_uri,
        "next": _safe_next(next),
    }
    response = RedirectResponse(begun["url"], status_code=303)
    # Lax, not Strict: the provider's redirect back is a cross-site top-level GET that must carry it
    response.set_cookie(
        STATE_COOKIE,
        sso.seal(pending),
        max_age=STATE_LIFETIME,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/login/oidc",
    )
    return response


@router.get(CALLBACK_PATH, name="oidc_callback")
def oidc_callback(
    request: Request, code: str = "", state: str = "", error: str = "", error_description: str = ""
) -> Response:
    sso = _sso(request)
    settings = sso.settings
    pending = sso.unseal(request.cookies.get(STATE_COOKIE))
    if pending is None:
        return _refused(
            request, "no pending sign-in (expired or altered)", "The single sign-on expired: try again.", status=400
        )
    if not state or not hmac.compare_digest(state.encode(), str(pending.get("state", "")).encode()):
        return _refused(
            request, "state mismatch", "The single sign-on did not match this browser: try again.", status=400
        )
    if error or not code:
        reason = f"provider error: {error or 'no code'}" + (
            f" ({error_description[:200]})" if error_description else ""
        )
        return _refused(request, reason, "The identity provider did not sign you in.", status=401)
    try:
        claims = sso.finish(
            code=code, redirect_uri=pending["redirect_uri"], code_verifier=pending["verifier"], nonce=pending["nonce"]
        )
    except Exception as exc:  # authlib's token or id_token checks (or the provider unreachable)
        reason = f"id token refused: {type(exc).__name__}: {str(exc)[:200]}"
        return _refused(request, reason, "The identity provider's answer did not verify.", status=401)
    name = claims.get(settings.username_claim)
    try:
        api.check_name(name if isinstance(name, str) else "", "user")
    except UserError:
        reason = f"no usable user name in the {settings.username_claim!r} claim"
        return _refused(request, reason, "Your identity has no user name medops can use.", status=403)
    role = settings.role_of(claims)
    if role is None:
        return _refused(
            request,
            f"no mapped role in the {settings.role_claim!r} claim",
            "Your account has no medops role: ask an administrator to grant you one at the identity provider.",
            status=403,
            name=name,
        )
    store = request.app.state.store
    try:
        principal = api.sso_login(store, name, role, issuer=settings.issuer, client=_client(request))
    except api.AuthError as exc:  # disabled in medops (audited by sso_login)
        response = _login_page(request, next_path="/runs", error=str(exc), status=exc.status)
        response.delete_cookie(STATE_COOKIE, path="/login/oidc")
        return response
    session = api.open_session(store, principal)
    response = _back(_safe_next(pending.get("next")))
    response.set_cookie(SESSION_COOKIE, session.id, httponly=True, samesite="lax", secure=_secure(request), path="/")
    response.delete_cookie(STATE_COOKIE, path="/login/oidc")
    return response
