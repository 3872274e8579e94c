"""API tokens: one per person (a *tenant*), shown once, stored only as a SHA-256 digest.

Redis keys (under the stack's prefix):

- ``<prefix>:token:<sha256 of the token>`` → the token's :class:`TokenInfo` (JSON)
- ``<prefix>:tokens`` (hash) name → the digest of that name's current token
- ``<prefix>:tenants`` (hash) name → the tenant id, kept for good: a new token for the same
  name (after a revoke, or to replace a lost one) reaches the same uploads and jobs.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

import redis
from pydantic import BaseModel, ConfigDict

from server.errors import ErrorWithHeaders
from server.kit.clock import utcnow
from server.kit.ids import new_id
from subtone.errors import SubtoneError

__all__ = [
    "TOKEN_PREFIX",
    "InvalidTokenName",
    "Tenant",
    "TokenInfo",
    "TokenNotFound",
    "TokenService",
    "Unauthorized",
    "token_digest",
    "token_key",
]

TOKEN_PREFIX = "st_"  # noqa: S105 - the visible prefix of every token, not a secret
TOKEN_BYTES = 32
MAX_TOKEN_LENGTH = 128
"""Longer Authorization values are refused before hashing."""
TENANT_ID_PREFIX = "tn"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_AUTH_SCHEME = "Bearer"


class Unauthorized(ErrorWithHeaders):
    code = "unauthorized"
    status = 401

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"WWW-Authenticate": _AUTH_SCHEME})


class InvalidTokenName(SubtoneError):
    code = "invalid_name"
    status = 400


class TokenNotFound(SubtoneError):
    code = "not_found"
    status = 404


@dataclass(frozen=True)
class Tenant:
    """Whom a request is from: everything it makes and sees is namespaced by ``id``."""

    id: str
    name: str


class TokenInfo(BaseModel):
    """What is kept of a token (never the token itself)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    tenant: str
    digest: str
    created_at: datetime


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_key(prefix: str, digest: str) -> str:
    """Where the record of the token with this digest is kept."""
    return f"{prefix}:token:{digest}"


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class TokenService:
    """Making, listing and revoking tokens (the admin commands); what a request's token is
    worth is :class:`server.auth.admission.Admission`'s to say."""

    def __init__(self, client: redis.Redis, *, prefix: str) -> None:
        self._redis = client
        self._prefix = prefix

    def _token_key(self, digest: str) -> str:
        return token_key(self._prefix, digest)

    @property
    def _names(self) -> str:
        return f"{self._prefix}:tokens"

    @property
    def _tenants(self) -> str:
        return f"{self._prefix}:tenants"

    def create(self, name: str) -> tuple[str, TokenInfo]:
        """A new token for ``name`` (replacing the one it had). The token is returned once."""
        if not _NAME.fullmatch(name):
            raise InvalidTokenName(
                "A token name is 1 to 64 letters, digits or . _ @ - and starts with a letter "
                "or digit."
            )
        token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
        self._redis.hsetnx(self._tenants, name, new_id(TENANT_ID_PREFIX))
        tenant = _text(self._redis.hget(self._tenants, name))
        info = TokenInfo(name=name, tenant=tenant, digest=token_digest(token), created_at=utcnow())
        previous = self._redis.hget(self._names, name)
        pipe = self._redis.pipeline(transaction=True)
        if previous is not None:
            pipe.delete(self._token_key(_text(previous)))
        pipe.set(self._token_key(info.digest), info.model_dump_json())
        pipe.hset(self._names, name, info.digest)
        pipe.execute()
        return token, info

    def list(self) -> builtins.list[TokenInfo]:
        """Every current token's record, by name."""
        digests = [_text(d) for d in self._redis.hvals(self._names)]
        raws = self._redis.mget([self._token_key(d) for d in digests]) if digests else []
        infos = [TokenInfo.model_validate_json(raw) for raw in raws if raw]
        return sorted(infos, key=lambda info: info.name)

    def revoke(self, name: str) -> None:
        """``name``'s token stops working at once."""
        digest = self._redis.hget(self._names, name)
        if digest is None:
            raise TokenNotFound(f"There is no token named {name!r}.")
        pipe = self._redis.pipeline(transaction=True)
        pipe.delete(self._token_key(_text(digest)))
        pipe.hdel(self._names, name)
        pipe.execute()

    def authenticate(self, token: str) -> Tenant:
        """The tenant ``token`` belongs to; :class:`Unauthorized` for anything else."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > MAX_TOKEN_LENGTH:
            raise Unauthorized("The API token is not valid.")
        digest = token_digest(token)
        raw = self._redis.get(self._token_key(digest))
        info = TokenInfo.model_validate_json(raw) if raw else None
        if info is None or not hmac.compare_digest(info.digest, digest):
            raise Unauthorized("The API token is not valid (mistyped, or revoked).")
        return Tenant(id=info.tenant, name=info.name)
