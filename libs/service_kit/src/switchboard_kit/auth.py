"""Sign-in and roles: OAuth2 bearer tokens (JWT) verified against a JWKS, roles checked per operation.

Every API route needs ``Authorization: Bearer <JWT>``; only ``/health/*``, the docs pages and the
OpenAPI document are open. A token is accepted when its signature verifies against a key of the
JWKS at ``<PREFIX>AUTH_JWKS_URL`` (``https://`` from an identity provider such as Keycloak, or
``file://`` for the local issuer ``make run`` keeps), its ``iss`` and ``aud`` are the configured
ones and it has not expired. Its roles come from a claim (``roles`` by default; a dotted path such
as ``realm_access.roles`` reaches into Keycloak's), and a customer's own party from another
(``party_id``). Without a configured JWKS every protected request is refused: the default is closed.

Failures are TMF Error bodies: 401 with ``WWW-Authenticate: Bearer`` for a missing, expired or
badly signed token, 403 for a role that may not do the thing (:func:`require`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import OrderedDict
from collections.abc import Collection, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import jwt
import orjson
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import ApiError, ErrorCode

AGENT, MANAGER, INTEGRATION, CUSTOMER = "agent", "manager", "integration", "customer"
ROLES = (AGENT, MANAGER, INTEGRATION, CUSTOMER)
STAFF = frozenset({AGENT, MANAGER, INTEGRATION})
ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "PS256")

# Paths anyone may read: probes, the API documents and the docs pages with their assets.
PUBLIC_PREFIXES = ("/health/", "/docs", "/redoc", "/openapi.json")


@dataclasses.dataclass(frozen=True)
class Principal:
    """Who is calling: the token's subject, its roles, and (for a customer) its own party id."""

    subject: str
    roles: frozenset[str]
    party_id: str | None = None

    def only_customer(self) -> bool:
        """A customer with no staff role: limited to its own party's resources."""
        return CUSTOMER in self.roles and not (self.roles & STAFF)


# The verified caller of the request being served (set by AuthMiddleware), for domain code that records
# who did a thing (a status change's author) without being handed the request.
_current: ContextVar[Principal | None] = ContextVar("principal", default=None)


def current_principal() -> Principal | None:
    """The verified caller of the request being served, or None outside a protected request."""
    return _current.get()


def unauthorized(message: str) -> ApiError:
    return ErrorCode.UNAUTHORIZED.error(
        message, headers={"WWW-Authenticate": 'Bearer realm="switchboard", error="invalid_token"'}
    )


def forbidden(message: str) -> ApiError:
    return ErrorCode.FORBIDDEN.error(message)


def principal(request: Request) -> Principal:
    """The verified caller of a protected route (set by :class:`AuthMiddleware`)."""
    found = request.scope.get("principal")
    if not isinstance(found, Principal):  # a route the middleware did not protect
        raise unauthorized("This operation needs a bearer token")
    return found


def require(request: Request, roles: Collection[str]) -> Principal:
    """The caller, if it holds one of ``roles``; 403 otherwise."""
    caller = principal(request)
    if not caller.roles & set(roles):
        raise forbidden(f"This operation needs one of the roles {', '.join(sorted(roles))}")
    return caller


class Verifier:
    """Verifies bearer tokens against a JWKS (fetched lazily, cached, refreshed for an unknown key id).

    Verified tokens are remembered until they expire (an LRU of ``cache_size``), so a client that
    sends the same token with every request pays for the signature check once.
    """

    def __init__(
        self,
        *,
        jwks_url: str | None,
        issuer: str | None,
        audience: str | None,
        roles_claim: str = "roles",
        party_claim: str = "party_id",
        leeway: float = 30.0,
        jwks_ttl: float = 300.0,
        cache_size: int = 10_000,
        timeout: float = 5.0,
    ) -> None:
        self.jwks_url = jwks_url
        self.issuer = issuer
        self.audience = audience
        self.roles_claim = roles_claim.split(".")
        self.party_claim = party_claim.split(".")
        self.leeway = leeway
        self.jwks_ttl = jwks_ttl
        self.cache_size = cache_size
        self.timeout = timeout
        self._keys: dict[Any, Any] = {}
        self._fetched_at = -float("inf")
        self._lock = asyncio.Lock()
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    async def verify(self, token: str) -> Principal:
        cached = self._verified.get(token)
        now = time.time()
        if cached is not None and cached[1] > now:
            self._verified.move_to_end(token)
            return cached[0]
        if self.jwks_url is None or self.issuer is None or self.audience is None:
            raise unauthorized("No identity provider is configured for this service")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise unauthorized(f"Malformed bearer token: {exc}") from None
        key = await self._key(header.get("kid"))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=list(ALGORITHMS),
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise unauthorized("The bearer token has expired") from None
        except jwt.PyJWTError as exc:
            raise unauthorized(f"Invalid bearer token: {exc}") from None
        caller = Principal(
            subject=str(claims["sub"]),
            roles=frozenset(_roles(_claim(claims, self.roles_claim))),
            party_id=_text(_claim(claims, self.party_claim)),
        )
        self._verified[token] = (caller, float(claims["exp"]) + self.leeway)
        if len(self._verified) > self.cache_size:
            self._verified.popitem(last=False)
        return caller

    async def _key(self, kid: Any) -> Any:
        now = time.monotonic()
        if now - self._fetched_at > self.jwks_ttl or (kid not in self._keys and now - self._fetched_at > 10):
            async with self._lock:
                if now - self._fetched_at > self.jwks_ttl or kid not in self._keys:
                    await self._fetch()
        if kid in self._keys:
            return self._keys[kid]
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        raise unauthorized("The bearer token is signed by a key this service does not know")

    async def _fetch(self) -> None:
        assert self.jwks_url is not None
        try:
            document = await _read(self.jwks_url, self.timeout)
            keys = jwt.PyJWKSet.from_dict(document).keys
        except (OSError, httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
            raise ErrorCode.UNAUTHORIZED.error(
                f"The identity provider's keys could not be read: {type(exc).__name__}",
                headers={"WWW-Authenticate": 'Bearer realm="switchboard"'},
            ) from None
        self._keys = {k.key_id: k.key for k in keys}  # a key without "kid" under None
        self._fetched_at = time.monotonic()


async def _read(url: str, seconds: float) -> Any:
    parts = urlsplit(url)
    if parts.scheme == "file":
        return orjson.loads(await asyncio.to_thread(Path(unquote(parts.path)).read_bytes))
    async with httpx.AsyncClient(timeout=seconds) as client:
        response = await client.get(url)
        response.raise_for_status()
        return response.json()


def _claim(claims: Mapping[str, Any], path: list[str]) -> Any:
    node: Any = claims
    for part in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def _roles(value: Any) -> list[str]:
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _is_public(path: str) -> bool:
    return path.startswith(PUBLIC_PREFIXES) or path == "/health"


class AuthMiddleware:
    """Verifies the bearer token of every request outside :data:`PUBLIC_PREFIXES` (401 without a valid
    one) and leaves the caller in ``scope["principal"]`` for the routes' role checks."""

    def __init__(self, app: ASGIApp, verifier: Verifier) -> None:
        self.app = app
        self.verifier = verifier

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "OPTIONS" or _is_public(scope["path"]):
            await self.app(scope, receive, send)
            return
        from .middleware import send_error

        token = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, credentials = value.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer" and credentials.strip():
                    token = credentials.strip()
                break
        try:
            if token is None:
                raise unauthorized("Send Authorization: Bearer <token>")
            caller = await self.verifier.verify(token)
            scope["principal"] = caller
        except ApiError as error:
            headers = [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
            await send_error(send, error, headers)
            return
        reset = _current.set(caller)
        try:
            await self.app(scope, receive, send)
        finally:
            _current.reset(reset)
