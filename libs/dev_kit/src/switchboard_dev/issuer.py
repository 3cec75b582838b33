"""The local token issuer of ``make run`` and the tests: a signing key kept in a folder, its JWKS
published next to it (the services read it through ``file://``), and tokens signed with it.

``make token ROLE=agent`` (or ``manager``, ``integration``, ``customer PARTY=<id>``) prints a token
for the suite ``make run`` started: ``python -m switchboard_dev.issuer ROLE [--party ID]``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

ISSUER = "http://localhost/switchboard"
AUDIENCE = "switchboard"
ROLES = ("agent", "manager", "integration", "customer")
DEFAULT_LIFETIME = 8 * 3600  # a working day; at least the hour the README promises


class LocalIssuer:
    """An ES256 key in ``folder`` (created on first use and kept), and its JWKS in ``jwks.json``."""

    def __init__(self, folder: Path, issuer: str = ISSUER, audience: str = AUDIENCE) -> None:
        self.folder = folder
        self.issuer = issuer
        self.audience = audience
        self.key_path = folder / "signing-key.pem"
        self.jwks_path = folder / "jwks.json"
        folder.mkdir(parents=True, exist_ok=True)
        if not self.key_path.exists():
            key = ec.generate_private_key(ec.SECP256R1())
            pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            descriptor = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as out:
                out.write(pem)
        loaded = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
        assert isinstance(loaded, ec.EllipticCurvePrivateKey)
        self.key = loaded
        public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key()))
        self.kid = f"local-{public['x'][:12]}"
        self.jwks = {"keys": [{**public, "kid": self.kid, "use": "sig", "alg": "ES256"}]}
        self.jwks_path.write_text(json.dumps(self.jwks))

    @property
    def jwks_url(self) -> str:
        return self.jwks_path.resolve().as_uri()

    def settings(self) -> dict[str, str]:
        """The auth settings a service needs to trust this issuer."""
        return {"auth_jwks_url": self.jwks_url, "auth_issuer": self.issuer, "auth_audience": self.audience}

    def env(self, prefix: str) -> dict[str, str]:
        return {f"{prefix}{name.upper()}": value for name, value in self.settings().items()}

    def token(
        self,
        role: str | list[str],
        *,
        party: str | None = None,
        subject: str | None = None,
        lifetime: float = DEFAULT_LIFETIME,
        **claims: Any,
    ) -> str:
        roles = [role] if isinstance(role, str) else list(role)
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject or f"{'-'.join(roles)}-{uuid.uuid4().hex[:8]}",
            "iat": now,
            "exp": now + int(lifetime),
            "roles": roles,
            **claims,
        }
        if party is not None:
            payload["party_id"] = party
        return jwt.encode(payload, self.key, algorithm="ES256", headers={"kid": self.kid})

    def headers(self, role: str | list[str] = "integration", **kw: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role, **kw)}"}


def main(argv: list[str] | None = None) -> int:
    from .launcher import _data_dir

    parser = argparse.ArgumentParser(description="Print a token for the suite `make run` started.")
    parser.add_argument("role", choices=ROLES)
    parser.add_argument("--party", help="the customer's own party id (role customer)")
    parser.add_argument("--hours", type=float, default=DEFAULT_LIFETIME / 3600)
    args = parser.parse_args(argv)
    if args.role == "customer" and not args.party:
        parser.error(
            "a customer token names its party: --party CUST-1001 (make token ROLE=customer PARTY=...)"
        )
    issuer = LocalIssuer(_data_dir() / "auth")
    print(issuer.token(args.role, party=args.party, lifetime=args.hours * 3600))  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
