"""``HASURA_GRAPHQL_JWT_SECRET``: parsed and validated the way Hasura does it, once, at start-up.

:func:`parse_jwt_secret` accepts Hasura's JSON object (as a string or already decoded), or a
JSON list of such objects (one per issuer). Every problem is a ``ValueError`` whose message
names the setting (``EDGE_JWT_SECRET``), the field and the config's position, and never
contains key material.
"""

from __future__ import annotations

import difflib
import json
import math
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Literal

from edge.auth.json_path import parse_json_path
from edge.auth.jwks import ASYMMETRIC_ALGORITHMS, HMAC_ALGORITHMS, static_key
from edge.session_names import ALLOWED_ROLES, DEFAULT_ROLE, SESSION_PREFIX

__all__ = [
    "DEFAULT_CLAIMS_NAMESPACE",
    "JWT_TYPES",
    "HeaderLocation",
    "JWTConfig",
    "parse_jwt_secret",
]

DEFAULT_CLAIMS_NAMESPACE = "https://hasura.io/jwt/claims"
#: Hasura's ``type`` names -> the JWS ``alg`` a token must carry. ``none`` is not, and never will be, here.
JWT_TYPES: Final[Mapping[str, str]] = MappingProxyType(
    {
        **{name: name for name in HMAC_ALGORITHMS},
        **{name: name for name in ASYMMETRIC_ALGORITHMS if name != "EdDSA"},
        "Ed25519": "EdDSA",
    }
)
#: Hasura docs: at least 32 characters for HS256; we require 32 bytes for every HS size.
MIN_HMAC_KEY_BYTES = 32
_FIELDS = frozenset(
    {
        "type",
        "key",
        "jwk_url",
        "claims_namespace",
        "claims_namespace_path",
        "claims_format",
        "claims_map",
        "audience",
        "issuer",
        "allowed_skew",
        "header",
    }
)


@dataclass(frozen=True)
class HeaderLocation:
    """Where the token is read from: ``Authorization: Bearer``, a cookie, or a custom header."""

    kind: Literal["Authorization", "Cookie", "CustomHeader"] = "Authorization"
    name: str | None = None


@dataclass(frozen=True)
class JWTConfig:
    """One entry of ``HASURA_GRAPHQL_JWT_SECRET`` (field names follow Hasura's JSON keys).

    ``key`` is excluded from ``repr``; ``claims_map`` from ``hash`` (it is a mapping).
    Build instances with :func:`parse_jwt_secret`, which validates them.
    """

    type: str | None = None
    key: str | None = field(default=None, repr=False)
    jwk_url: str | None = None
    claims_namespace: str = DEFAULT_CLAIMS_NAMESPACE
    claims_namespace_path: str | None = None
    claims_format: Literal["json", "stringified_json"] = "json"
    claims_map: Mapping[str, Any] | None = field(default=None, hash=False)
    audience: tuple[str, ...] | None = None
    issuer: str | None = None
    allowed_skew: float = 0
    header: HeaderLocation = field(default_factory=HeaderLocation)

    def algorithms(self) -> tuple[str, ...]:
        """The JWS ``alg`` values a token may use under this config (never ``none``).

        With ``type`` it is that one algorithm (``Ed25519`` -> ``EdDSA``). A ``jwk_url`` config
        without ``type`` returns the asymmetric algorithms a JWK may carry; each JWK is then
        pinned to its own ``alg`` (or ``kty``/``crv``), so this is only the outer bound.
        """
        if self.type is not None:
            return (JWT_TYPES[self.type],)
        return ASYMMETRIC_ALGORITHMS if self.jwk_url is not None else ()


def parse_jwt_secret(raw: str | Mapping[str, Any] | Sequence[Any]) -> tuple[JWTConfig, ...]:
    """Parse and validate ``HASURA_GRAPHQL_JWT_SECRET``: one object, or a list of objects.

    Raises ``ValueError`` (never including the key) for: invalid JSON; unknown fields; both or
    neither of ``key``/``jwk_url``; ``key`` without ``type``; an unknown ``type``; an HMAC key
    shorter than 32 bytes or an asymmetric key that does not parse or match ``type``; a
    non-http(s) ``jwk_url``; both ``claims_namespace`` and ``claims_namespace_path``; a JSON path
    Hasura's parser refuses (:mod:`edge.auth.json_path`); a ``claims_map`` without the two role
    claims; a malformed ``audience``, ``issuer``, ``allowed_skew`` or ``header``.
    """
    document: Any = raw
    if isinstance(raw, str | bytes):
        try:
            document = json.loads(raw)
        except ValueError:
            # json's message quotes the input, which may hold the key.
            raise ValueError("EDGE_JWT_SECRET is not valid JSON") from None
    if isinstance(document, Mapping):
        return (_parse_one(document, ""),)
    if isinstance(document, Sequence) and not isinstance(document, str | bytes):
        if not document:
            raise ValueError("EDGE_JWT_SECRET: the list of JWT configs is empty")
        return tuple(_parse_one(item, f" (config #{index})") for index, item in enumerate(document))
    raise ValueError("EDGE_JWT_SECRET must be a JSON object or a list of objects")


def _with_suggestion(name: str) -> str:
    """``issuers`` -> ``issuers (did you mean issuer?)`` when a field's name is close enough."""
    match = difflib.get_close_matches(name, sorted(_FIELDS), n=1)
    return f"{name} (did you mean {match[0]}?)" if match else name


def _parse_one(item: Any, where: str) -> JWTConfig:
    def fail(message: str) -> ValueError:
        return ValueError(f"EDGE_JWT_SECRET{where}: {message}")

    if not isinstance(item, Mapping):
        raise fail("each JWT config must be a JSON object")
    unknown = sorted(str(name) for name in item if name not in _FIELDS)
    if unknown:
        # A typo such as "issuers" would silently disable a check: refuse it.
        raise fail(f"unknown field(s): {', '.join(_with_suggestion(name) for name in unknown)}")
    try:
        key, jwk_url, type_ = _parse_key(item)
        namespace, namespace_path, claims_format = _parse_namespace(item)
        return JWTConfig(
            type=type_,
            key=key,
            jwk_url=jwk_url,
            claims_namespace=namespace,
            claims_namespace_path=namespace_path,
            claims_format=claims_format,
            claims_map=_parse_claims_map(item.get("claims_map")),
            audience=_parse_audience(item.get("audience")),
            issuer=_optional_str(item, "issuer"),
            allowed_skew=_parse_skew(item.get("allowed_skew")),
            header=_parse_header(item.get("header")),
        )
    except ValueError as exc:
        raise fail(str(exc)) from None


def _optional_str(item: Mapping[str, Any], name: str) -> str | None:
    value = item.get(name)
    if value is not None and (not isinstance(value, str) or not value):
        raise ValueError(f"{name} must be a non-empty string")
    return value


def _parse_key(item: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    key, jwk_url, type_ = item.get("key"), item.get("jwk_url"), item.get("type")
    if key is None and jwk_url is None:
        raise ValueError("key and jwk_url both cannot be empty")
    if key is not None and jwk_url is not None:
        raise ValueError("key, jwk_url both cannot be present")
    if type_ is not None and (not isinstance(type_, str) or type_ not in JWT_TYPES):
        raise ValueError(f"unknown type; expected one of {', '.join(JWT_TYPES)}")
    if key is not None:
        if not isinstance(key, str) or not key:
            raise ValueError("key must be a non-empty string")
        if type_ is None:
            raise ValueError("type is required with key")
        alg = JWT_TYPES[type_]
        if alg in HMAC_ALGORITHMS and len(key.encode("utf-8")) < MIN_HMAC_KEY_BYTES:
            raise ValueError(f"the {type_} key must be at least {MIN_HMAC_KEY_BYTES} bytes long")
        static_key(alg, key)  # raises a key-free ValueError if it does not parse or fit the type
        return key, None, type_
    if not isinstance(jwk_url, str):
        raise ValueError("jwk_url must be a string")
    try:
        parsed = urllib.parse.urlsplit(jwk_url)
        valid = parsed.scheme in ("http", "https") and bool(parsed.hostname)
        parsed.port  # noqa: B018  # raises ValueError for an out-of-range port
    except ValueError:
        valid = False
    if not valid:
        raise ValueError("jwk_url must be an absolute http(s) URL")
    if type_ is not None and JWT_TYPES[type_] in HMAC_ALGORITHMS:
        raise ValueError("jwk_url keys are asymmetric; an HS type cannot be used with jwk_url")
    return None, jwk_url, type_


def _parse_namespace(item: Mapping[str, Any]) -> tuple[str, str | None, Literal["json", "stringified_json"]]:
    namespace = _optional_str(item, "claims_namespace")
    path = _optional_str(item, "claims_namespace_path")
    if namespace is not None and path is not None:
        raise ValueError("claims_namespace and claims_namespace_path both cannot be set")
    if path is not None:
        try:
            parse_json_path(path)
        except ValueError as exc:
            raise ValueError(f"claims_namespace_path: {exc}") from None
    claims_format = item.get("claims_format", "json")
    if claims_format == "json":
        return namespace or DEFAULT_CLAIMS_NAMESPACE, path, "json"
    if claims_format == "stringified_json":
        return namespace or DEFAULT_CLAIMS_NAMESPACE, path, "stringified_json"
    raise ValueError('claims_format must be "json" or "stringified_json"')


def _parse_claims_map(value: Any) -> Mapping[str, Any] | None:
    """Validate ``claims_map`` and normalise it to lower-cased names -> literal or {path[, default]}."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError("claims_map must be an object")
    parsed: dict[str, Any] = {}
    for name, spec in value.items():
        if not isinstance(name, str) or not name.lower().startswith(SESSION_PREFIX):
            raise ValueError("claims_map keys must be session variables (x-hasura-*)")
        lowered = name.lower()
        if lowered in parsed:
            raise ValueError(f"claims_map: {lowered} is given more than once")
        if isinstance(spec, Mapping):
            extra = set(spec) - {"path", "default"}
            if "path" not in spec or extra:
                raise ValueError(f'claims_map: {lowered} must be a literal or {{"path": ..., "default": ...}}')
            path = spec["path"]
            try:
                parse_json_path(path)
            except ValueError as exc:
                raise ValueError(f"claims_map: {lowered}: {exc}") from None
            if "default" in spec:
                _check_claim_value(lowered, spec["default"], "default")
            parsed[lowered] = MappingProxyType(dict(spec))
        else:
            _check_claim_value(lowered, spec, "literal value")
            parsed[lowered] = spec
    for required in (ALLOWED_ROLES, DEFAULT_ROLE):
        if required not in parsed:
            raise ValueError(f"claims_map must contain {required}")
    return MappingProxyType(parsed)


def _check_claim_value(name: str, value: Any, what: str) -> None:
    if name == ALLOWED_ROLES:
        ok = isinstance(value, list) and all(isinstance(role, str) and role for role in value)
        if not ok:
            raise ValueError(f"claims_map: the {what} of {name} must be a list of role names")
    elif not isinstance(value, str) or (name == DEFAULT_ROLE and not value):
        raise ValueError(f"claims_map: the {what} of {name} must be a string")


def _parse_audience(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
        raise ValueError("audience must be a non-empty string or a non-empty list of strings")
    return tuple(values)


def _parse_skew(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError("allowed_skew must be a non-negative number of seconds")
    return float(value)


def _parse_header(value: Any) -> HeaderLocation:
    if value is None:
        return HeaderLocation()
    if not isinstance(value, Mapping) or set(value) - {"type", "name"}:
        raise ValueError('header must be {"type": "Authorization" | "Cookie" | "CustomHeader", "name": ...}')
    kind, name = value.get("type"), value.get("name")
    if kind == "Authorization":
        return HeaderLocation("Authorization", None)
    if kind in ("Cookie", "CustomHeader"):
        if not isinstance(name, str) or not name:
            raise ValueError(f"header type {kind} needs a non-empty name")
        return HeaderLocation("Cookie" if kind == "Cookie" else "CustomHeader", name)
    raise ValueError('header type must be "Authorization", "Cookie" or "CustomHeader"')
