"""Platform registrations: which LMSs may launch the course (``grader lti register``), and the
LTI library's view of them (:class:`DatabaseToolConf`).

Why in the database: every server process on one database (SQLite in the data folder, or a
shared PostgreSQL) must accept the same platforms, and a registration holds nothing secret (LTI
1.3 trusts key pairs: the platform's public keys come from its key-set URL, the tool's private key
is in ``lti_keys``). An issuer may register several client ids (two Canvas developer keys, say),
and a client id several deployments; a launch must name a registered pair and deployment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pylti1p3.deployment import Deployment
from pylti1p3.registration import Registration
from pylti1p3.tool_config import ToolConfAbstract
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from grader.server.db import Database
from grader.server.lti.keys import signing_key
from grader.server.models import AuditEvent, LtiDeployment, LtiPlatform


class RegistrationError(ValueError):
    """A registration that cannot be stored; the message says which value and why."""


@dataclass(frozen=True)
class PlatformInfo:
    """A registered platform as the commands and pages show it."""

    id: int
    issuer: str
    client_id: str
    auth_login_url: str
    auth_token_url: str
    key_set_url: str
    auth_audience: str
    deployments: tuple[str, ...]


def _url(name: str, value: str) -> str:
    value = (value or "").strip()
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise RegistrationError(f"--{name} {value!r} is not an http(s) URL")
    return value


def _info(row: LtiPlatform) -> PlatformInfo:
    return PlatformInfo(
        row.id,
        row.issuer,
        row.client_id,
        row.auth_login_url,
        row.auth_token_url,
        row.key_set_url,
        row.auth_audience,
        tuple(sorted(d.deployment_id for d in row.deployments)),
    )


def register(
    db: Database,
    *,
    issuer: str,
    client_id: str,
    deployment_id: str,
    auth_url: str,
    token_url: str,
    jwks_url: str,
    audience: str = "",
    actor: str = "cli",
) -> tuple[PlatformInfo, bool]:
    """Add a platform (issuer + client id) with a deployment, or a deployment to a registered
    one (its URLs updated to the ones given). (the platform, whether it was new)."""
    # as the platform writes it in every id_token's iss (an https URL in LTI 1.3): checked, never
    # rewritten; a bare host name would only show later, as every launch refused
    issuer = _url("issuer", issuer)
    client_id, deployment_id = client_id.strip(), deployment_id.strip()
    if not client_id or not deployment_id:
        raise RegistrationError("--client-id and --deployment-id must not be empty")
    urls = {
        "auth_login_url": _url("auth-url", auth_url),
        "auth_token_url": _url("token-url", token_url),
        "key_set_url": _url("jwks-url", jwks_url),
        "auth_audience": audience.strip(),
    }
    with db.write() as session:
        row = session.scalar(
            select(LtiPlatform).where(
                LtiPlatform.issuer == issuer, LtiPlatform.client_id == client_id
            )
        )
        created = row is None
        if row is None:
            row = LtiPlatform(issuer=issuer, client_id=client_id, **urls)
            session.add(row)
            session.flush()
        else:
            for key, value in urls.items():
                setattr(row, key, value)
        known = {d.deployment_id for d in row.deployments}
        if deployment_id not in known:
            session.add(LtiDeployment(platform_id=row.id, deployment_id=deployment_id))
        session.add(
            AuditEvent(
                actor=actor,
                action="lti_platform_registered",
                subject=f"{issuer} {client_id}",
                detail={"deployment": deployment_id, "new": created},
            )
        )
        session.flush()
        session.refresh(row)
        return _info(row), created


def platforms(db: Database) -> list[PlatformInfo]:
    with db.read() as session:
        rows = session.scalars(
            select(LtiPlatform).options(selectinload(LtiPlatform.deployments))
        ).all()
        return [_info(row) for row in rows]


def find(db: Database, issuer: str, client_id: str | None) -> PlatformInfo | None:
    """The registration of ``issuer`` and ``client_id`` (None: the issuer's only one)."""
    with db.read() as session:
        query = (
            select(LtiPlatform)
            .options(selectinload(LtiPlatform.deployments))
            .where(LtiPlatform.issuer == issuer)
        )
        if client_id:
            query = query.where(LtiPlatform.client_id == client_id)
        rows = session.scalars(query).all()
        return _info(rows[0]) if len(rows) == 1 else None


def by_id(db: Database, platform_id: int) -> PlatformInfo | None:
    with db.read() as session:
        row = session.scalar(
            select(LtiPlatform)
            .options(selectinload(LtiPlatform.deployments))
            .where(LtiPlatform.id == platform_id)
        )
        return _info(row) if row else None


def registration(db: Database, platform: PlatformInfo) -> Registration:
    """The LTI library's registration: the platform's URLs and the tool's signing key."""
    key = signing_key(db)
    reg = Registration()
    reg.set_issuer(platform.issuer).set_client_id(platform.client_id)
    reg.set_auth_login_url(platform.auth_login_url).set_auth_token_url(platform.auth_token_url)
    reg.set_key_set_url(platform.key_set_url)
    if platform.auth_audience:
        reg.set_auth_audience(platform.auth_audience)
    reg.set_tool_private_key(key.private_pem).set_tool_public_key(key.public_pem)
    return reg


class DatabaseToolConf(ToolConfAbstract[Any]):
    """pylti1p3's tool configuration read from the registrations in the database: an issuer may
    have many client ids, so lookups go by (issuer, client id) whenever the client id is known."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.issuers_relation_types = _ManyClients()

    def find_registration_by_issuer(self, iss: str, *args: Any, **kwargs: Any) -> Any:
        platform = find(self.db, iss, None)
        return registration(self.db, platform) if platform else None

    def find_registration_by_params(
        self, iss: str, client_id: str, *args: Any, **kwargs: Any
    ) -> Any:
        platform = find(self.db, iss, client_id)
        return registration(self.db, platform) if platform else None

    def find_deployment(self, iss: str, deployment_id: str) -> Deployment | None:
        return self._deployment(find(self.db, iss, None), deployment_id)

    def find_deployment_by_params(
        self, iss: str, deployment_id: str, client_id: str, *args: Any, **kwargs: Any
    ) -> Deployment | None:
        return self._deployment(find(self.db, iss, client_id), deployment_id)

    @staticmethod
    def _deployment(platform: PlatformInfo | None, deployment_id: str) -> Deployment | None:
        if platform is None or deployment_id not in platform.deployments:
            return None
        return Deployment().set_deployment_id(deployment_id)


class _ManyClients(dict):
    """Every issuer may have several client ids (the library's per-issuer switch, always on)."""

    def get(self, key: Any, default: Any = None) -> Any:
        from pylti1p3.tool_config.abstract import IssuerToClientRelation

        return IssuerToClientRelation.MANY_CLIENTS_IDS_PER_ISSUER
