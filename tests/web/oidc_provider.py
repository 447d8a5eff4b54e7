"""A small but real OpenID Connect provider for the single sign-on tests, run as its own loopback
process: ``python oidc_provider.py --client-id ID --client-secret SECRET`` prints ``port N`` and
serves until killed.

- ``/.well-known/openid-configuration``: the discovery document;
- ``/jwks``: the public half of an RSA key generated at start;
- ``/authorize``: signs the user named by ``login_hint`` (one of USERS) in at once and redirects
  back with a code; it requires ``response_type=code``, the client id, the ``openid`` scope, a
  ``state``, a ``nonce`` and a PKCE S256 challenge. ``mode`` makes the id_token wrong on purpose
  (MODES); ``mode=deny`` answers ``error=access_denied``;
- ``/token``: checks the code (once), the redirect URI, the client secret (HTTP Basic or the form)
  and the PKCE verifier, and answers an id_token signed RS256 with authlib.jose.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import secrets
import threading
import time
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

with warnings.catch_warnings():  # authlib >= 1.7 points to joserfc; authlib.jose still works
    warnings.simplefilter("ignore")
    from authlib.jose import JsonWebKey, jwt

USERS = {
    "op.sso": {"roles": ["staff", "medops-operator"], "name": "Olive Operator"},
    "adm.sso": {"roles": ["medops-viewer", "medops-admin"]},
    "viewer.sso": {"roles": "medops-viewer"},
    "nobody.sso": {"roles": ["staff"]},
    "kc.sso": {"realm_access": {"roles": ["offline_access", "medops-operator"]}},
    "bad name!": {"roles": ["medops-viewer"]},
}
MODES = ("wrong_nonce", "other_key", "expired", "wrong_aud", "wrong_aud_azp", "wrong_iss", "hs256", "no_id_token")
KID = "medops-test-key"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class Provider:
    def __init__(self, client_id: str, client_secret: str):
        self.client_id = client_id
        self.client_secret = client_secret
        self.key = JsonWebKey.generate_key("RSA", 2048, is_private=True, options={"kid": KID})
        self.other = JsonWebKey.generate_key("RSA", 2048, is_private=True, options={"kid": KID})  # same kid
        self.codes: dict[str, dict] = {}
        self.lock = threading.Lock()
        self.issuer = ""

    def discovery(self) -> dict:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.issuer + "/authorize",
            "token_endpoint": self.issuer + "/token",
            "jwks_uri": self.issuer + "/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "HS256"],  # HS256 listed: medops must not take it
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": ["openid", "profile", "email"],
        }

    def jwks(self) -> dict:
        return {"keys": [self.key.as_dict(is_private=False, kid=KID, use="sig", alg="RS256")]}

    def id_token(self, grant: dict) -> str:
        now = int(time.time())
        mode = grant["mode"]
        claims = {
            "iss": self.issuer + ("/other" if mode == "wrong_iss" else ""),
            "sub": "sub-" + hashlib.sha256(grant["user"].encode()).hexdigest()[:12],
            "aud": "someone-else" if mode.startswith("wrong_aud") else self.client_id,
            "iat": now - (7200 if mode == "expired" else 0),
            "exp": now - (3600 if mode == "expired" else -300),
            "auth_time": now,
            "nonce": "not-the-nonce" if mode == "wrong_nonce" else grant["nonce"],
            "preferred_username": grant["user"],
            **USERS.get(grant["user"], {}),
        }
        if mode == "wrong_aud_azp":  # meant for another client, naming us as the authorized party
            claims["azp"] = self.client_id
        if mode == "hs256":
            return jwt.encode({"alg": "HS256"}, claims, self.client_secret.encode()).decode()
        key = self.other if mode == "other_key" else self.key
        return jwt.encode({"alg": "RS256", "kid": KID}, claims, key).decode()


class Handler(BaseHTTPRequestHandler):
    provider: Provider

    def log_message(self, *args) -> None:  # quiet
        pass

    def _json(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def _redirect(self, target: str) -> None:
        self.send_response(302)
        self.send_header("Location", target)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        p = self.provider
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/.well-known/openid-configuration":
            return self._json(200, p.discovery())
        if url.path == "/jwks":
            return self._json(200, p.jwks())
        if url.path != "/authorize":
            return self._json(404, {"error": "not_found"})
        problems = [
            name
            for name, ok in (
                ("response_type", query.get("response_type") == "code"),
                ("client_id", query.get("client_id") == p.client_id),
                ("scope", "openid" in query.get("scope", "").split()),
                ("state", bool(query.get("state"))),
                ("nonce", bool(query.get("nonce"))),
                ("code_challenge", bool(query.get("code_challenge"))),
                ("code_challenge_method", query.get("code_challenge_method") == "S256"),
                ("redirect_uri", bool(query.get("redirect_uri"))),
            )
            if not ok
        ]
        if problems:
            return self._json(400, {"error": "invalid_request", "error_description": ", ".join(problems)})
        back = query["redirect_uri"]
        if query.get("mode") == "deny":
            return self._redirect(f"{back}?{urlencode({'error': 'access_denied', 'state': query['state']})}")
        code = secrets.token_urlsafe(24)
        with p.lock:
            p.codes[code] = {
                "user": query.get("login_hint", "op.sso"),
                "nonce": query["nonce"],
                "challenge": query["code_challenge"],
                "redirect_uri": back,
                "mode": query.get("mode", ""),
            }
        self._redirect(f"{back}?{urlencode({'code': code, 'state': query['state']})}")

    def do_POST(self) -> None:
        p = self.provider
        if urlsplit(self.path).path != "/token":
            return self._json(404, {"error": "not_found"})
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        client_id, secret = form.get("client_id"), form.get("client_secret")
        header = self.headers.get("Authorization", "")
        if header.startswith("Basic "):
            from urllib.parse import unquote

            given_id, _, given_secret = base64.b64decode(header[6:]).decode().partition(":")
            client_id, secret = unquote(given_id), unquote(given_secret)
        if client_id != p.client_id or secret != p.client_secret:
            return self._json(401, {"error": "invalid_client"})
        with p.lock:
            grant = p.codes.pop(form.get("code", ""), None)  # a code works once
        if form.get("grant_type") != "authorization_code" or grant is None:
            return self._json(400, {"error": "invalid_grant", "error_description": "unknown or used code"})
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return self._json(400, {"error": "invalid_grant", "error_description": "redirect_uri differs"})
        verifier = form.get("code_verifier", "")
        if not verifier or _b64(hashlib.sha256(verifier.encode()).digest()) != grant["challenge"]:
            return self._json(400, {"error": "invalid_grant", "error_description": "PKCE verifier does not match"})
        token = {"access_token": secrets.token_urlsafe(24), "token_type": "Bearer", "expires_in": 300}
        if grant["mode"] != "no_id_token":
            token["id_token"] = p.id_token(grant)
        self._json(200, token)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    args = parser.parse_args()
    provider = Provider(args.client_id, args.client_secret)
    handler = type("BoundHandler", (Handler,), {"provider": provider})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    provider.issuer = f"http://127.0.0.1:{server.server_address[1]}"
    print(f"port {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
