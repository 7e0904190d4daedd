"""A small browser stand-in for the page tests: an httpx client with the session cookie.

It logs in the way a browser does (GET the login page for the cookie and the CSRF token from the
hidden input, then POST the form) and reads CSRF tokens out of the pages it is shown.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
from sqlalchemy import func, select

from callgate.apps.models import Application
from callgate.services import Services
from tests.support.factories import PASSWORD

CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')
SESSION_COOKIE = "callgate_session"


def csrf_from(html: str) -> str:
    match = CSRF_INPUT.search(html)
    assert match is not None, "the page has no CSRF token"
    return match.group(1)


def text_of(html: str, element_id: str) -> str:
    """The text of the element with this id (our templates put such values on one element)."""
    match = re.search(rf'id="{re.escape(element_id)}"[^>]*>([^<]*)<', html)
    assert match is not None, f"no element #{element_id}"
    return match.group(1).strip()


class PageClient:
    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, follow_redirects=False, timeout=30)

    def close(self) -> None:
        self.http.close()

    @property
    def session_cookie(self) -> str | None:
        return self.http.cookies.get(SESSION_COOKIE)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(path, **kwargs)

    def csrf_token(self, path: str = "/logout") -> str:
        """The CSRF token of the current session, read from a page's form."""
        page = self.http.get(path)
        assert page.status_code == 200, page.text
        return csrf_from(page.text)

    def submit_login(self, login: str, password: str = PASSWORD, next: str = "") -> httpx.Response:
        page = self.http.get("/login", params={"next": next} if next else None)
        data = {"login": login, "password": password, "csrf_token": csrf_from(page.text)}
        if next:
            data["next"] = next
        return self.http.post("/login", data=data)

    def login(self, login: str, password: str = PASSWORD) -> PageClient:
        response = self.submit_login(login, password)
        assert response.status_code == 303, response.text
        return self

    def post(
        self, path: str, data: dict[str, str] | None = None, *, csrf: str | None = None
    ) -> httpx.Response:
        """POST a form with this session's CSRF token (or the given one; "" sends none)."""
        fields = dict(data or {})
        token = self.csrf_token() if csrf is None else csrf
        if token:
            fields["csrf_token"] = token
        return self.http.post(path, data=fields)


def count_apps(services: Services) -> int:
    with services.database.read() as session:
        return int(session.scalar(select(func.count()).select_from(Application)) or 0)


def load_app(services: Services, app_id: str) -> Application | None:
    with services.database.read() as session:
        return session.scalar(select(Application).where(Application.app_id == app_id))
