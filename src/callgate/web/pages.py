"""What every page route needs: the templates, the browser session, login redirects, CSRF.

Page routes take ``PageSession`` (any visitor, a session is created on demand) or ``LoggedIn``
(redirects anonymous visitors to ``/login?next=...``), render with :func:`render`, and check
posted forms with :func:`check_csrf`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from callgate.identity.models import User
from callgate.services import Services, ServicesDep
from callgate.web.sessions import COOKIE_NAME, BrowserSession

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


class LoginRequired(Exception):
    """Raised by :func:`logged_in`; the app answers with a redirect to the login page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class CsrfFailed(Exception):
    """A posted form without the session's CSRF token; answered 403."""


def safe_next(value: str | None, default: str = "/app/") -> str:
    """A local path to go to after login; anything else (other hosts, schemes) is refused."""
    if not value:
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/") or value.startswith("//"):
        return default
    if "\\" in value or any(ord(c) < 0x20 for c in value):
        return default
    return value


def login_url(next_path: str) -> str:
    return "/login?next=" + quote(next_path, safe="")


def browser_session(request: Request, services: ServicesDep) -> BrowserSession:
    """The visitor's session; a new anonymous one is started (and set as cookie) if needed."""
    existing = services.sessions.load(request.cookies.get(COOKIE_NAME))
    if existing is not None:
        return existing
    fresh = services.sessions.start()
    request.state.new_session_id = fresh.raw_id
    return fresh


PageSession = Annotated[BrowserSession, Depends(browser_session)]


def logged_in(request: Request, page_session: PageSession) -> User:
    if page_session.user is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    return page_session.user


LoggedIn = Annotated[User, Depends(logged_in)]


def set_session_cookie(response: Any, raw_id: str, services: Services) -> None:
    response.set_cookie(
        COOKIE_NAME,
        raw_id,
        max_age=services.settings.session_lifetime,
        httponly=True,
        secure=services.settings.cookie_secure,
        samesite="lax",
        path="/",
    )


def render(
    request: Request,
    services: Services,
    page_session: BrowserSession,
    template: str,
    context: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """Render a page with the user, the CSRF token and any new session cookie."""
    full: dict[str, Any] = {
        "user": page_session.user,
        "csrf_token": services.sessions.csrf_token(page_session.raw_id),
    }
    full.update(context or {})
    response = templates.TemplateResponse(request, template, full, status_code=status_code)
    new_id = getattr(request.state, "new_session_id", None)
    if new_id:
        set_session_cookie(response, new_id, services)
    return response


def check_csrf(services: Services, page_session: BrowserSession, token: str | None) -> None:
    if not services.sessions.csrf_valid(page_session.raw_id, token):
        raise CsrfFailed()
