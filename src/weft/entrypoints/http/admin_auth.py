"""Who may use the admin routes: a bearer token (`WEFT_ADMIN_TOKEN`, several comma-separated so one can be rotated)
or a signed session cookie the sign-in form sets. Every admin route sits in one mount, the AdminArea, whose one
AuthenticationMiddleware decides; the routes only say `requires("admin")`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections import deque
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

import attrs
from starlette.authentication import AuthCredentials, AuthenticationBackend, AuthenticationError, SimpleUser
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import Scope

from weft.config import Settings

COOKIE = "weft_admin"
DISABLED = "admin API is disabled: set WEFT_ADMIN_TOKEN to enable it"
WRONG_TOKEN = "missing or wrong bearer token"


@attrs.frozen
class AdminSession:
    """A signed-in browser: which token signed it (by fingerprint), until when, and its CSRF secret."""

    token_id: str
    expires: int
    nonce: str


class AdminSessions:
    """Session cookies signed (HMAC-SHA256) with the admin token that was signed in with: removing a token from
    WEFT_ADMIN_TOKEN ends its sessions, and no other secret is needed."""

    def __init__(self, tokens: Sequence[str], hours: float, clock: Callable[[], float] = time.time) -> None:
        self._tokens = {_fingerprint(token): token for token in tokens}
        self._seconds, self._clock = int(hours * 3600), clock

    @property
    def seconds(self) -> int:
        return self._seconds

    def token_matches(self, supplied: str) -> bool:
        """Whether `supplied` is one of the tokens (compared in constant time, each of them)."""
        return any([hmac.compare_digest(supplied.encode(), token.encode()) for token in self._tokens.values()])

    def start(self, token: str) -> str:
        """The cookie value for a browser that signed in with `token` (one of the tokens)."""
        session = AdminSession(_fingerprint(token), int(self._clock()) + self._seconds, secrets.token_urlsafe(16))
        payload = base64.urlsafe_b64encode(json.dumps(attrs.asdict(session)).encode()).decode()
        return f"{payload}.{_sign(token, payload)}"

    def verify(self, cookie: str) -> AdminSession | None:
        """The session, or None when the cookie is forged, expired or signed with a token no longer configured."""
        payload, _, signature = cookie.partition(".")
        try:
            session = AdminSession(**json.loads(base64.urlsafe_b64decode(payload.encode())))
        except (ValueError, TypeError):
            return None
        token = self._tokens.get(session.token_id)
        if token is None or not hmac.compare_digest(_sign(token, payload), signature):
            return None
        return session if session.expires > self._clock() else None

    def csrf_token(self, session: AdminSession) -> str:
        token = self._tokens[session.token_id]
        return _sign(token, f"csrf:{session.nonce}")

    def csrf_ok(self, session: AdminSession, supplied: str) -> bool:
        return hmac.compare_digest(self.csrf_token(session).encode(), supplied.encode())


class SignInThrottle:
    """At most `limit` failed sign-ins a minute from one client address (in this process)."""

    def __init__(self, limit: int = 5, window: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._limit, self._window, self._clock = limit, window, clock
        self._failures: dict[str, deque[float]] = {}

    def blocked(self, client: str) -> float:
        """Seconds until this client may try again; 0 when it may now."""
        failures = self._recent(client)
        if not failures:
            self._failures.pop(client, None)  # forget addresses that stopped failing
        return 0.0 if len(failures) < self._limit else max(0.0, failures[0] + self._window - self._clock())

    def failed(self, client: str) -> None:
        self._recent(client).append(self._clock())

    def _recent(self, client: str) -> deque[float]:
        failures = self._failures.setdefault(client, deque())
        while failures and failures[0] <= self._clock() - self._window:
            failures.popleft()
        return failures


class AdminAuthBackend(AuthenticationBackend):
    """`admin` for a right bearer token or a valid session cookie; a wrong bearer token is an error (401), no
    credentials at all leave the request anonymous (the sign-in page is the only route that allows that)."""

    def __init__(self, sessions: AdminSessions, enabled: bool) -> None:
        self._sessions, self._enabled = sessions, enabled

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, SimpleUser] | None:
        header = conn.headers.get("authorization")
        if header is not None:
            if not self._enabled:
                raise AuthenticationError(DISABLED)
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not self._sessions.token_matches(token.strip()):
                raise AuthenticationError(WRONG_TOKEN)
            return AuthCredentials(["admin"]), SimpleUser("bearer")
        session = self._sessions.verify(conn.cookies.get(COOKIE, "")) if self._enabled else None
        if session is None:
            return None
        conn.scope["admin_session"] = session
        return AuthCredentials(["admin", "session"]), SimpleUser("session")


class AdminArea(Mount):
    """The one mount of every admin route, behind one authentication middleware. The admin routes live under
    several prefixes (`/admin`, `/api/admin`, `/api/bird`, `/metrics`) that integrations already call, so this
    mount owns those prefixes rather than one: it matches a path under any of them and hands it, whole, to a
    router of its routes. Every other path passes it by, never seeing the middleware."""

    def __init__(self, routes: Sequence[BaseRoute], middleware: Sequence[Middleware]) -> None:
        super().__init__("", routes=routes, middleware=middleware)
        self.prefixes = tuple(path for route in routes if (path := getattr(route, "path", "")))

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] not in ("http", "websocket") or not self.owns(_route_path(scope)):
            return Match.NONE, {}
        return super().matches(scope)

    def owns(self, path: str) -> bool:
        return any(path == prefix or path.startswith(prefix + "/") for prefix in self.prefixes)


def _route_path(scope: Scope) -> str:
    """The path below the app's root path, as Starlette's own routes match it."""
    path, root = str(scope["path"]), str(scope.get("root_path", ""))
    return path[len(root):] if root and path.startswith(root) else path


def admin_area(settings: Settings, sessions: AdminSessions, routes: Sequence[BaseRoute]) -> AdminArea:
    """The admin routes, in one mount with the one authentication middleware that admits them."""
    backend = AdminAuthBackend(sessions, bool(settings.admin_tokens))
    return AdminArea(routes, [Middleware(AuthenticationMiddleware, backend=backend, on_error=_refused)])


def session_of(request: Request) -> AdminSession | None:
    found = request.scope.get("admin_session")
    return found if isinstance(found, AdminSession) else None


def cookie_is_secure(settings: Settings) -> bool:
    return urlsplit(settings.public_url).scheme == "https"


def _refused(conn: HTTPConnection, exc: AuthenticationError) -> Response:
    return JSONResponse({"error": str(exc)}, status_code=401)


def _fingerprint(token: str) -> str:
    return hashlib.sha256(f"weft-admin-token:{token}".encode()).hexdigest()[:16]


def _sign(token: str, payload: str) -> str:
    key = hashlib.sha256(f"weft-admin-session:{token}".encode()).digest()
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()
