"""Verifying an external identity provider's ID token, before ``api.link_identity`` trusts it.

The database trusts whoever may call ``api.link_identity`` (members of
chatmem_identity_broker) to have checked the token; this module is that check.
A token is accepted only when all of these hold (PyJWT does the cryptography):

- its ``iss`` is one of the configured providers (read before the signature,
  only to pick the provider's keys; nothing else of an unverified token is used);
- its header names an asymmetric algorithm (RS/PS/ES/EdDSA): ``none`` and the
  HMAC algorithms are refused, so a public key can never serve as a shared secret;
- its signature verifies against a key of that provider's JWKS, picked by
  ``kid`` (PyJWKClient: the key set is cached for ``JWKS_CACHE_SECONDS`` and
  fetched again when an unknown ``kid`` appears, i.e. after a key rotation);
- ``iss`` equals the provider's issuer, ``aud`` holds one of its audiences,
  ``exp`` is in the future and ``nbf`` (when present) in the past, each with
  ``LEEWAY_SECONDS`` of clock skew; ``exp``, ``iss``, ``aud`` and ``sub`` are
  required;
- it carries an ``email``, and ``email_verified`` is not false: the email may
  create an account (or, with link_identity_by_email, open one).

Settings: ``CHATMEM_OIDC_PROVIDERS``, a JSON list of
``{"issuer": "...", "audience": "..." or [...], "jwksUrl": "https://..."}``.
A refusal is a :class:`chatmem.api_errors.NotAuthorized` (401); a key set that
cannot be fetched is :class:`ProviderUnavailable` (503).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import jwt

from chatmem.api_errors import NotAuthorized

PROVIDERS_ENV: Final = "CHATMEM_OIDC_PROVIDERS"
ALGORITHMS: Final = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
LEEWAY_SECONDS: Final = 30
JWKS_CACHE_SECONDS: Final = 300
JWKS_TIMEOUT_SECONDS: Final = 5
HINT: Final = "Sign in with the identity provider again and send its fresh ID token as idToken."


@dataclass(frozen=True)
class Provider:
    """One identity provider whose ID tokens the gateway accepts."""

    issuer: str
    audiences: tuple[str, ...]
    jwks_url: str


class ProviderUnavailable(Exception):
    """The provider's key set could not be fetched: nothing was decided about the token."""


def parse_providers(raw: str | Sequence[Mapping[str, Any]] | None) -> tuple[Provider, ...]:
    """The providers of a ``CHATMEM_OIDC_PROVIDERS`` value (JSON text, or its parsed list).

    A mistake fails here, at start, naming the entry and the field.
    """
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return ()
    items: Any = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(items, list):
        raise ValueError(f"{PROVIDERS_ENV} must be a JSON list of providers")
    providers = []
    for n, item in enumerate(items):
        where = f"{PROVIDERS_ENV}[{n}]"
        if not isinstance(item, dict):
            raise ValueError(f"{where} must be an object with issuer, audience and jwksUrl")
        issuer, audience, jwks_url = item.get("issuer"), item.get("audience"), item.get("jwksUrl")
        if not isinstance(issuer, str) or not issuer:
            raise ValueError(f"{where}.issuer must be the provider's iss, e.g. https://accounts.google.com")
        audiences = [audience] if isinstance(audience, str) else audience
        if not isinstance(audiences, list) or not audiences or not all(isinstance(a, str) and a for a in audiences):
            raise ValueError(f"{where}.audience must be your client id (or a list of them)")
        if not isinstance(jwks_url, str) or urlsplit(jwks_url).scheme not in ("http", "https"):
            raise ValueError(f"{where}.jwksUrl must be the provider's JWKS URL (http or https)")
        providers.append(Provider(issuer, tuple(audiences), jwks_url))
    return tuple(providers)


def providers_from_env() -> tuple[Provider, ...]:
    return parse_providers(os.environ.get(PROVIDERS_ENV))


@dataclass(frozen=True)
class Identity:
    """What a verified ID token says: who (issuer, subject), their email and name."""

    issuer: str
    subject: str
    email: str
    name: str | None


def refuse(message: str) -> NotAuthorized:
    return NotAuthorized("28000", f"idToken: {message}", HINT)


class Verifier:
    """Checks ID tokens of the configured providers (thread-safe; blocking: run it in a thread)."""

    def __init__(self, providers: Iterable[Provider]) -> None:
        self.providers = {p.issuer: p for p in providers}
        self._keys = {
            p.issuer: jwt.PyJWKClient(p.jwks_url, cache_jwk_set=True, lifespan=JWKS_CACHE_SECONDS,
                                      cache_keys=True, timeout=JWKS_TIMEOUT_SECONDS)
            for p in self.providers.values()
        }

    def verify(self, id_token: str) -> Identity:
        try:
            header = jwt.get_unverified_header(id_token)
            unverified = jwt.decode(id_token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise refuse("is not a JWT (header.payload.signature)") from None
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise refuse(f"algorithm {str(algorithm)[:20]!r} is not accepted (only signed with a provider's key)")
        issuer = unverified.get("iss")
        provider = self.providers.get(issuer) if isinstance(issuer, str) else None
        if provider is None:
            raise refuse("its issuer is not one this gateway accepts")
        try:
            key = self._keys[provider.issuer].get_signing_key_from_jwt(id_token)
        except jwt.PyJWKClientConnectionError as exc:
            raise ProviderUnavailable(f"the key set of {provider.issuer} could not be fetched") from exc
        except jwt.PyJWTError:
            raise refuse("signed with a key its issuer does not publish") from None
        try:
            claims = jwt.decode(
                id_token, key=key, algorithms=[algorithm], audience=list(provider.audiences),
                issuer=provider.issuer, leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud", "sub"], "verify_nbf": True},
            )
        except jwt.ExpiredSignatureError:
            raise refuse("has expired") from None
        except jwt.ImmatureSignatureError:
            raise refuse("is not valid yet (nbf)") from None
        except jwt.InvalidAudienceError:
            raise refuse("is meant for another audience (aud)") from None
        except jwt.InvalidIssuerError:
            raise refuse("its issuer is not one this gateway accepts") from None
        except jwt.MissingRequiredClaimError as exc:
            raise refuse(f"has no {exc.claim} claim") from None
        except jwt.InvalidSignatureError:
            raise refuse("its signature does not verify") from None
        except jwt.PyJWTError:
            raise refuse("is not a valid ID token") from None
        subject, email, name = claims.get("sub"), claims.get("email"), claims.get("name")
        if not isinstance(subject, str):
            raise refuse("its sub claim is not a string")
        if not isinstance(email, str) or not email:
            raise NotAuthorized("28000", "idToken: has no email claim",
                                "Ask the provider for the email scope (scope=openid email), then sign in again.")
        if claims.get("email_verified") is False:
            raise NotAuthorized("28000", "idToken: its email is not verified by the provider",
                                "Verify the email with the identity provider, then sign in again.")
        return Identity(provider.issuer, subject, email, name if isinstance(name, str) else None)
