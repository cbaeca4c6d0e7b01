"""Authentication: the caller is whoever the platform's JWT says.

The token is issued by the LXP monolith; we only verify it. Algorithms come
from an allow-list in settings, and each algorithm gets its own key type (the
HS256 secret never verifies an RS256 token and vice versa), which closes the
``alg: none`` and HS/RS key-confusion holes. Anything wrong with the token
itself is 401 ``unauthenticated``; a genuine token whose claims are missing or
mistyped is 400 ``invalid_argument`` (the seeds' "invalid JWT claims").

The token is verified once per request: whoever needs the caller first (the
rate-limit middleware, or the auth dependency) calls :func:`resolve_principal`,
which keeps the verified principal — or the error — on ``request.state``
(the ASGI scope's ``state``); everybody after reuses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.errors import ApiError
from api.validation import MAX_ID_DIGITS, positive_int
from orchestration import logs
from orchestration.settings import Settings

STUDENT_PRIVILEGE = 4
_SUPPORTED = {"HS256", "RS256"}

# auto_error=False: we raise our own Encore error instead of FastAPI's 403.
bearer_scheme = HTTPBearer(auto_error=False, description="Platform JWT: `Authorization: Bearer <token>`.")


@dataclass(frozen=True)
class Principal:
    """The authenticated caller, from the JWT claims."""

    institution_id: int
    user_id: int
    subdomain: str
    privilege_id: int | None = None

    @property
    def is_student(self) -> bool:
        return self.privilege_id == STUDENT_PRIVILEGE


class AuthError(ApiError):
    def __init__(self, message: str) -> None:
        super().__init__("unauthenticated", message)


def _key_for(alg: str, settings: Settings) -> Any:
    if alg == "HS256":
        if not settings.jwt_secret:
            raise AuthError("HS256 tokens are not accepted by this server")
        return settings.jwt_secret
    if not settings.jwt_public_key:
        raise AuthError("RS256 tokens are not accepted by this server")
    return settings.jwt_public_key


def allowed_algorithms(settings: Settings) -> list[str]:
    return [a.strip().upper() for a in settings.jwt_algorithms.split(",") if a.strip().upper() in _SUPPORTED]


def decode_token(token: str, settings: Settings) -> dict[str, Any]:
    """Verify signature/expiry and return the claims, or raise 401."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise AuthError("Invalid token: malformed JWT") from None
    alg = str(header.get("alg", ""))
    if alg not in allowed_algorithms(settings):
        raise AuthError(f"Invalid token: algorithm {alg or 'none'!r} is not allowed")
    try:
        claims = jwt.decode(
            token,
            _key_for(alg, settings),
            algorithms=[alg],
            options={"require": [], "verify_exp": True, "verify_aud": False, "verify_iss": False},
            leeway=5,
        )
    except jwt.ExpiredSignatureError:
        raise AuthError("Invalid token: expired") from None
    except jwt.InvalidSignatureError:
        raise AuthError("Invalid token: bad signature") from None
    except (jwt.PyJWTError, ValueError, TypeError):
        raise AuthError("Invalid token") from None
    if not isinstance(claims, dict):
        raise AuthError("Invalid token: claims must be a JSON object")
    return claims


def _int_claim(claims: dict[str, Any], *names: str, required: bool = True) -> int | None:
    """A positive id claim below 10**MAX_ID_DIGITS (fits SQLite's and PostgreSQL's signed
    64-bit integers: an id >= 2**63 was an OverflowError, i.e. a 500, in the job store).

    JSON numbers or digit strings (some issuers stringify ids); never bools or floats with a fraction.
    """
    for name in names:
        if name in claims:
            value = claims[name]
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if isinstance(value, int | str) and (number := positive_int(value)) is not None:
                return number
            break
    else:
        if not required:
            return None
        raise ApiError("invalid_argument", f"Invalid JWT claims: missing {names[0]}")
    raise ApiError(
        "invalid_argument", f"Invalid JWT claims: {names[0]} must be a positive integer below 10^{MAX_ID_DIGITS}"
    )


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    """Claims -> Principal, or 400 invalid_argument naming the bad claim."""
    institution_id = _int_claim(claims, "institutionId")
    user_id = _int_claim(claims, "userId", "userID")
    subdomain = claims.get("subdomain")
    if subdomain is None:
        raise ApiError("invalid_argument", "Invalid JWT claims: missing subdomain")
    if not isinstance(subdomain, str) or not subdomain.strip():
        raise ApiError("invalid_argument", "Invalid JWT claims: subdomain must be a non-empty string")
    privilege = _int_claim(claims, "privilegio_id", required=False)
    assert institution_id is not None and user_id is not None
    return Principal(institution_id, user_id, subdomain.strip(), privilege)


def bearer_token(request: Request) -> str:
    """The raw token of the Authorization header, or 401."""
    return token_of(request.headers.get("authorization"))


def token_of(header: str | None) -> str:
    """The raw token of an Authorization header value, or 401."""
    if not header:
        raise AuthError("Missing Authorization header")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("Authorization header must be 'Bearer <token>'")
    return token.strip()


AUTH_STATE = "auth"  # key in the ASGI scope's state: the verified Principal or the ApiError


def resolve_principal(state: dict[str, Any], header: str | None, settings: Settings) -> Principal:
    """The caller of this request, verifying the token only the first time it is asked for.

    ``state`` is the ASGI scope's ``state`` dict (``request.state``); the outcome —
    a :class:`Principal` or the :class:`ApiError` to answer with — is stored there.
    """
    outcome = state.get(AUTH_STATE)
    if outcome is None:
        try:
            outcome = principal_from_claims(decode_token(token_of(header), settings))
        except ApiError as exc:
            outcome = exc
        state[AUTH_STATE] = outcome
    if isinstance(outcome, ApiError):
        raise outcome
    return outcome


def authenticate(request: Request, settings: Settings) -> Principal:
    return resolve_principal(request.scope.setdefault("state", {}), request.headers.get("authorization"), settings)


def current_principal(
    request: Request,
    _creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    """Dependency of every authenticated route (``_creds`` only documents the scheme)."""
    principal = authenticate(request, request.app.state.settings)
    logs.bind(institution=principal.institution_id)
    return principal


def admin_principal(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """Library management is for admins: students (privilegio_id 4) get 403.

    The privilege claim is required here (400 when absent): without it we
    cannot tell an admin from a student.
    """
    if principal.privilege_id is None:
        raise ApiError("invalid_argument", "Invalid JWT claims: missing privilegio_id")
    if principal.is_student:
        raise ApiError("permission_denied", "Students cannot list library contents")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
AdminPrincipal = Annotated[Principal, Depends(admin_principal)]
