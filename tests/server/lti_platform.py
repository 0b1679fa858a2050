"""A fake LTI 1.3 platform for the tests: an in-process LMS on loopback with its own RSA key.

It does what Moodle and Canvas do in an LTI Advantage exchange, and records every call a tool
makes to it:

- serves its key set (``/jwks``) and signs id_tokens with its key;
- starts a launch (:meth:`FakePlatform.login_params`: the OIDC third-party login initiation) and
  answers the tool's authentication request (``/auth``) with the form that posts the signed
  id_token to the tool's redirect URI, checking the request's client id, redirect URI and
  ``response_type``/``scope``, as a platform must;
- issues access tokens (``/token``) for the tool's client-credentials assertion, which it
  verifies against the tool's own published key set (``tool_jwks``: the tool's ``/lti/jwks.json``);
- serves Assignment and Grade Services (line item container, line items, scores) and Names and
  Role Provisioning Services (a membership container), refusing a missing or wrong-scope token;
- receives deep linking responses (``/deep-link-return``), verified against the tool's key set.

The claims follow the IMS LTI 1.3 core, AGS 2.0, NRPS 2.0 and Deep Linking 2.0 specifications,
in the two shapes the tests replay: ``moodle`` (Moodle's ``lti_get_jwt_claim_mapping``: iss its
wwwroot, sub the numeric user id, ``lis.person_sourcedid`` the ID number, ``ext.user_username``,
``tool_platform.family_code``, AGS endpoints under ``/mod/lti/services.php``) and ``canvas``
(Canvas's documented launch: iss ``https://canvas.instructure.com``, a UUID sub, a
``<n>:<hash>`` deployment id, ``lis.person_sourcedid`` the SIS id, the
``https://www.instructure.com/placement`` and ``lti11_legacy_user_id`` claims, AGS under
``/api/lti/courses/<id>/line_items``, NRPS ``/api/lti/courses/<id>/names_and_roles``).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode
from urllib.request import urlopen

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, abort, jsonify, request
from jwcrypto.jwk import JWK
from werkzeug.serving import make_server

from tests.server.conftest import _free_port as free_port

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
AGS = "https://purl.imsglobal.org/spec/lti-ags/"
NRPS_CLAIM = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
SCORE_SCOPE = AGS + "scope/score"
LINEITEM_SCOPE = AGS + "scope/lineitem"
AGS_SCOPES = [
    AGS + "scope/lineitem",
    AGS + "scope/lineitem.readonly",
    AGS + "scope/result.readonly",
    SCORE_SCOPE,
]
ROLE = "http://purl.imsglobal.org/vocab/lis/v2/"
LEARNER_ROLES = [ROLE + "membership#Learner"]
INSTRUCTOR_ROLES = [ROLE + "membership#Instructor", ROLE + "institution/person#Faculty"]


def new_key() -> tuple[str, dict[str, Any]]:
    """(private PEM, public JWK with kid and alg) of a fresh RSA key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    jwk = JWK.from_pem(pem.encode())
    public = jwk.export_public(as_dict=True)
    return pem, {**public, "alg": "RS256", "use": "sig"}


@dataclass
class User:
    sub: str
    name: str
    email: str
    roles: list[str]
    sourced_id: str = ""
    username: str = ""


@dataclass
class Call:
    """One request a tool made to the platform's services."""

    method: str
    path: str
    body: Any
    token: str


@dataclass
class FakePlatform:
    """A platform on ``http://<host>:<port>`` (``start()``); ``flavour``: "moodle" or "canvas"."""

    tool_jwks: Callable[[], dict[str, Any]]  # the tool's published key set
    tool_launch_url: str  # the tool's redirect URI (its /lti/launch)
    tool_login_url: str  # the tool's OIDC login initiation URL (its /lti/login)
    flavour: str = "moodle"
    host: str = "127.0.0.1"
    client_id: str = field(default_factory=lambda: "client-" + secrets.token_hex(4))
    deployment_id: str = "1"
    context_id: str = "course-2"
    port: int = field(default_factory=free_port)
    calls: list[Call] = field(default_factory=list)
    line_items: dict[str, dict[str, Any]] = field(default_factory=dict)  # id (URL) -> line item
    scores: list[dict[str, Any]] = field(default_factory=list)  # every score posted, in order
    members: list[User] = field(default_factory=list)  # the NRPS roster
    deep_links: list[dict[str, Any]] = field(default_factory=list)  # verified DL responses
    fail_scores: int = 0  # answer this many score posts with a 503 first
    tamper: str = ""  # the next authentication answer's id_token: "forged" or "expired"
    last_form: dict[str, str] = field(default_factory=dict)  # the last launch form (to replay)
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)  # message hint -> launch

    def __post_init__(self) -> None:
        self.private_pem, self.jwk = new_key()
        self.private_key = serialization.load_pem_private_key(self.private_pem.encode(), None)
        self.tokens: dict[str, list[str]] = {}  # access token -> scopes
        self.lock = threading.Lock()
        self.app = self._make_app()
        self._server: Any = None

    # -- addresses ---------------------------------------------------------------------------

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def issuer(self) -> str:
        return "https://canvas.instructure.com" if self.flavour == "canvas" else self.base

    @property
    def auth_url(self) -> str:
        return self.base + (
            "/api/lti/authorize_redirect" if self.flavour == "canvas" else "/mod/lti/auth.php"
        )

    @property
    def token_url(self) -> str:
        return self.base + (
            "/login/oauth2/token" if self.flavour == "canvas" else "/mod/lti/token.php"
        )

    @property
    def jwks_url(self) -> str:
        return self.base + (
            "/api/lti/security/jwks" if self.flavour == "canvas" else "/mod/lti/certs.php"
        )

    @property
    def lineitems_url(self) -> str:
        if self.flavour == "canvas":
            return f"{self.base}/api/lti/courses/{self.context_id}/line_items"
        return f"{self.base}/mod/lti/services.php/{self.context_id}/lineitems?type_id=1"

    @property
    def memberships_url(self) -> str:
        if self.flavour == "canvas":
            return f"{self.base}/api/lti/courses/{self.context_id}/names_and_roles"
        return f"{self.base}/mod/lti/services.php/CourseSection/{self.context_id}/bindings/1/memberships"

    def register_args(self) -> list[str]:
        """The ``grader lti register`` arguments for this platform (without --data)."""
        return [
            "--issuer", self.issuer, "--client-id", self.client_id,
            "--deployment-id", self.deployment_id, "--auth-url", self.auth_url,
            "--token-url", self.token_url, "--jwks-url", self.jwks_url,
        ]  # fmt: skip

    # -- launches ----------------------------------------------------------------------------

    def claims(
        self,
        user: User,
        *,
        message: str = "LtiResourceLinkRequest",
        resource_link: str = "rl-1",
        custom: dict[str, str] | None = None,
        lineitem: str | None = None,
        ags: bool = True,
        nrps: bool = True,
    ) -> dict[str, Any]:
        """The claims of a launch of ``user``, shaped as this platform's flavour sends them."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.client_id,
            "sub": user.sub,
            "iat": now,
            "exp": now + 300,
            "name": user.name,
            "given_name": user.name.split()[0] if user.name else "",
            "family_name": user.name.split()[-1] if user.name else "",
            "email": user.email,
            CLAIM + "message_type": message,
            CLAIM + "version": "1.3.0",
            CLAIM + "deployment_id": self.deployment_id,
            CLAIM + "roles": list(user.roles),
            CLAIM + "context": {
                "id": self.context_id,
                "label": "OBJLOC",
                "title": "Object localization (fake LMS course)",
                "type": ["http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"],
            },
            CLAIM + "launch_presentation": {
                "document_target": "iframe",
                "return_url": f"{self.base}/course/{self.context_id}/return",
                "locale": "en",
            },
            CLAIM + "lis": {"person_sourcedid": user.sourced_id},
            CLAIM + "custom": dict(custom or {}),
        }
        if self.flavour == "canvas":
            claims["azp"] = self.client_id
            claims[CLAIM + "tool_platform"] = {
                "guid": "canvas-guid", "name": "Fake Canvas", "version": "cloud",
                "product_family_code": "canvas",
            }  # fmt: skip
            claims[CLAIM + "lti11_legacy_user_id"] = secrets.token_hex(20)
            claims["https://www.instructure.com/placement"] = (
                "link_selection" if message == "LtiDeepLinkingRequest" else None
            )
        else:
            claims[CLAIM + "tool_platform"] = {
                "family_code": "moodle", "version": "2024100700", "guid": self.host,
                "name": "Fake Moodle", "description": "Fake Moodle",
            }  # fmt: skip
            claims[CLAIM + "ext"] = {"user_username": user.username, "lms": "moodle-2"}
        if message == "LtiResourceLinkRequest":
            claims[CLAIM + "resource_link"] = {"id": resource_link, "title": "Object localization"}
            claims[CLAIM + "target_link_uri"] = self.tool_launch_url
        else:
            claims[DL + "deep_linking_settings"] = {
                "deep_link_return_url": f"{self.base}/deep-link-return",
                "accept_types": ["ltiResourceLink"],
                "accept_presentation_document_targets": ["iframe", "window"],
                "accept_multiple": False,
                "auto_create": True,
                "data": "dl-" + secrets.token_hex(4),
            }
            claims[CLAIM + "target_link_uri"] = self.tool_launch_url
        if ags:
            endpoint: dict[str, Any] = {"scope": list(AGS_SCOPES), "lineitems": self.lineitems_url}
            if lineitem:
                endpoint["lineitem"] = lineitem
            claims[AGS + "claim/endpoint"] = endpoint
        if nrps:
            claims[NRPS_CLAIM] = {
                "context_memberships_url": self.memberships_url,
                "service_versions": ["1.0", "2.0"] if self.flavour == "moodle" else ["2.0"],
            }
        return claims

    def login_params(self, claims: dict[str, Any]) -> dict[str, str]:
        """The OIDC login initiation the platform sends the tool for a launch of ``claims``
        (the claims are signed only when the tool comes back with its authentication request)."""
        hint = secrets.token_hex(8)
        self.pending[hint] = claims
        return {
            "iss": self.issuer,
            "login_hint": str(claims["sub"]),
            "lti_message_hint": hint,
            "target_link_uri": str(claims.get(CLAIM + "target_link_uri") or self.tool_launch_url),
            "client_id": self.client_id,
            "lti_deployment_id": self.deployment_id,
        }

    def login_url(self, claims: dict[str, Any]) -> str:
        return self.tool_login_url + "?" + urlencode(self.login_params(claims))

    def sign(
        self, claims: dict[str, Any], key_pem: str | None = None, kid: str | None = None
    ) -> str:
        """An id_token of ``claims`` signed with the platform's key (or ``key_pem``: a forger's)."""
        return jwt.encode(
            claims, key_pem or self.private_key, algorithm="RS256",
            headers={"kid": kid or self.jwk["kid"]},
        )  # fmt: skip

    def authorize(self, params: dict[str, str]) -> tuple[str, dict[str, str]]:
        """Answer the tool's authentication request: (redirect URI, the form it posts there)."""
        checks = {
            "scope": "openid", "response_type": "id_token", "response_mode": "form_post",
            "client_id": self.client_id, "redirect_uri": self.tool_launch_url, "prompt": "none",
        }  # fmt: skip
        for name, value in checks.items():
            if params.get(name) != value:
                raise AssertionError(f"authentication request: {name}={params.get(name)!r}")
        claims = dict(self.pending.pop(params["lti_message_hint"]))
        assert str(claims["sub"]) == params["login_hint"]
        claims["nonce"] = params["nonce"]
        key = None
        if self.tamper == "forged":  # signed by someone else, under the platform's key id
            key = new_key()[0]
        elif self.tamper == "expired":
            claims["iat"], claims["exp"] = int(time.time()) - 900, int(time.time()) - 600
        self.tamper = ""
        self.last_form = {"id_token": self.sign(claims, key_pem=key), "state": params["state"]}
        return params["redirect_uri"], dict(self.last_form)

    # -- the HTTP side -------------------------------------------------------------------------

    def _bearer(self, scope: str) -> str:
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip()
        if scope not in self.tokens.get(token, []):
            abort(401)
        return token

    def _record(self, token: str) -> None:
        body = request.get_json(silent=True) if request.data else None
        with self.lock:
            self.calls.append(Call(request.method, request.full_path.rstrip("?"), body, token))

    def _verify_tool_jwt(self, value: str, audience: str) -> dict[str, Any]:
        keys = {k["kid"]: k for k in self.tool_jwks()["keys"]}
        kid = jwt.get_unverified_header(value).get("kid")
        if kid not in keys:
            abort(401)
        public = jwt.PyJWK(keys[kid]).key
        try:
            return jwt.decode(value, public, algorithms=["RS256"], audience=audience)
        except jwt.PyJWTError:
            abort(401)

    def _make_app(self) -> Flask:
        app = Flask(f"fake-{self.flavour}")
        platform = self

        @app.get("/jwks")
        @app.get("/mod/lti/certs.php")
        @app.get("/api/lti/security/jwks")
        def jwks() -> Any:
            return jsonify({"keys": [platform.jwk]})

        def autosubmit(target: str, form: dict[str, str]) -> str:
            fields = "".join(
                f'<input type="hidden" name="{k}" value="{v}">' for k, v in form.items()
            )
            return (
                f'<!doctype html><html lang="en"><title>Launching</title><body>'
                f'<form id="f" method="post" action="{target}">{fields}'
                f'<button type="submit">Continue</button></form>'
                f'<script>document.getElementById("f").submit()</script></body></html>'
            )

        @app.route("/mod/lti/auth.php", methods=["GET", "POST"])
        @app.route("/api/lti/authorize_redirect", methods=["GET", "POST"])
        def auth() -> Any:
            return autosubmit(*platform.authorize(request.values.to_dict()))

        @app.get("/replay")
        def replay() -> Any:
            """Post the last launch's form to the tool again (a captured launch, replayed)."""
            return autosubmit(platform.tool_launch_url, platform.last_form)

        @app.post("/mod/lti/token.php")
        @app.post("/login/oauth2/token")
        def token() -> Any:
            form = request.form
            assert form["grant_type"] == "client_credentials"
            assert form["client_assertion_type"].endswith("jwt-bearer")
            claims = platform._verify_tool_jwt(form["client_assertion"], platform.token_url)
            if claims.get("iss") != platform.client_id or claims.get("sub") != platform.client_id:
                abort(401)
            value = secrets.token_urlsafe(16)
            platform.tokens[value] = form.get("scope", "").split()
            with platform.lock:
                kid = jwt.get_unverified_header(form["client_assertion"]).get("kid")
                platform.calls.append(
                    Call("POST", request.path, {"scope": form.get("scope"), "kid": kid}, "")
                )
            return jsonify(
                {"access_token": value, "token_type": "Bearer", "expires_in": 3600,
                 "scope": form.get("scope", "")}
            )  # fmt: skip

        @app.route("/mod/lti/services.php/<context>/lineitems", methods=["GET", "POST"])
        @app.route("/api/lti/courses/<context>/line_items", methods=["GET", "POST"])
        def lineitems(context: str) -> Any:
            token = platform._bearer(LINEITEM_SCOPE)
            platform._record(token)
            if request.method == "GET":
                found = list(platform.line_items.values())
                tag = request.args.get("tag")
                return jsonify([i for i in found if not tag or i.get("tag") == tag])
            item = dict(request.get_json())
            item["id"] = f"{platform.base}/lineitems/{uuid.uuid4().hex[:8]}"
            platform.line_items[item["id"]] = item
            return jsonify(item), 201

        @app.post("/lineitems/<ident>/scores")
        def scores(ident: str) -> Any:
            token = platform._bearer(SCORE_SCOPE)
            platform._record(token)
            if platform.fail_scores > 0:
                platform.fail_scores -= 1
                return jsonify({"error": "busy"}), 503
            lineitem = f"{platform.base}/lineitems/{ident}"
            if lineitem not in platform.line_items:
                abort(404)
            with platform.lock:
                platform.scores.append({**request.get_json(), "lineitem": lineitem})
            return "", 204

        @app.get("/mod/lti/services.php/CourseSection/<context>/bindings/1/memberships")
        @app.get("/api/lti/courses/<context>/names_and_roles")
        def memberships(context: str) -> Any:
            token = platform._bearer(NRPS_SCOPE)
            platform._record(token)
            return jsonify({
                "id": request.url,
                "context": {"id": context, "title": "Object localization (fake LMS course)"},
                "members": [
                    {"status": "Active", "user_id": m.sub, "name": m.name, "email": m.email,
                     "lis_person_sourcedid": m.sourced_id, "roles": m.roles}
                    for m in platform.members
                ],
            })  # fmt: skip

        @app.post("/deep-link-return")
        def deep_link_return() -> Any:
            claims = platform._verify_tool_jwt(request.form["JWT"], platform.issuer)
            assert claims["iss"] == platform.client_id
            assert claims[DL + "data"], "the deep linking settings' data must come back"
            platform.deep_links.append(claims)
            items = claims[DL + "content_items"]
            return f'<!doctype html><html lang="en"><title>Added</title><body><h1>Added: {items[0]["title"]}</h1></body></html>'

        @app.get("/course/<context>/frame/<hint>")
        def frame(context: str, hint: str) -> Any:
            """The LMS course page that shows the tool in an iframe (the launch's target)."""
            claims = platform.pending[hint]
            params = {**platform.login_params(claims)}
            platform.pending.pop(hint)  # login_params re-filed it under a new hint
            source = platform.tool_login_url + "?" + urlencode(params)
            return (
                '<!doctype html><html lang="en"><title>Fake LMS course</title><body>'
                "<h1>Fake LMS course</h1>"
                f'<iframe name="tool" title="Course tool" src="{source}" '
                'style="width:100%;height:900px;border:0"></iframe></body></html>'
            )

        return app

    def frame_url(self, claims: dict[str, Any]) -> str:
        """A page of the LMS course showing a launch of ``claims`` in an iframe."""
        hint = secrets.token_hex(8)
        self.pending[hint] = claims
        return f"{self.base}/course/{self.context_id}/frame/{hint}"

    def start(self) -> FakePlatform:
        self._server = make_server(self.host, self.port, self.app, threaded=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    def score_posts(self) -> list[Call]:
        return [c for c in self.calls if c.path.endswith("/scores")]


def registered_with(server: Any) -> FakePlatform:
    """A started fake platform pointing at a live course server's LTI URLs (``live.Server``), and
    registered with it by ``grader lti register``, as an instructor would."""
    from tests.server import live

    def tool_jwks() -> dict:
        with urlopen(server.base + "/lti/jwks.json", timeout=10) as answer:
            return json.load(answer)

    platform = FakePlatform(
        tool_jwks=tool_jwks,
        tool_launch_url=server.base + "/lti/launch",
        tool_login_url=server.base + "/lti/login",
    ).start()
    live.grader("lti", "register", "--data", str(server.data), *platform.register_args())
    return platform


@contextlib.contextmanager
def running(**options: Any) -> Iterator[FakePlatform]:
    platform = FakePlatform(**options).start()
    try:
        yield platform
    finally:
        platform.stop()


def launch(client: Any, platform: FakePlatform, claims: dict[str, Any]) -> Any:
    """Launch ``claims`` into the tool behind ``client`` (a Flask test client) as a browser
    would: login initiation, the platform's answer, the form post. The launch's response."""
    from urllib.parse import parse_qsl, urlsplit

    started = client.get("/lti/login", query_string=platform.login_params(claims))
    assert started.status_code == 302, started.data[:500]
    target, form = platform.authorize(dict(parse_qsl(urlsplit(started.location).query)))
    return client.post(urlsplit(target).path, data=form)
