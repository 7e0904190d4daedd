"""The login and logout pages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from callgate.common.errors import TooManyAttempts
from callgate.services import ServicesDep
from callgate.web.pages import PageSession, check_csrf, render, safe_next, set_session_cookie
from callgate.web.sessions import COOKIE_NAME

router = APIRouter(include_in_schema=False)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/app/", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_form(
    request: Request, services: ServicesDep, page_session: PageSession, next: str = ""
) -> Response:
    if page_session.user is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, services, page_session, "login.html", {"next": safe_next(next)})


@router.post("/login", response_class=HTMLResponse)
def login_submit(
    request: Request,
    services: ServicesDep,
    page_session: PageSession,
    login: Annotated[str, Form(max_length=150)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    next: Annotated[str, Form(max_length=2048)] = "",
    csrf_token: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    check_csrf(services, page_session, csrf_token)
    target = safe_next(next)
    context = {"next": target, "login": login}
    try:
        user = services.authenticator.authenticate(login, password, client_address(request))
    except TooManyAttempts as exc:
        context["error"] = "Too many failed attempts. Try again later."
        locked = render(request, services, page_session, "login.html", context, 429)
        locked.headers["Retry-After"] = str(exc.retry_after)
        return locked
    if user is None or user.status != "active":
        context["error"] = "Wrong login or password."
        return render(request, services, page_session, "login.html", context, 401)
    fresh = services.sessions.login(page_session.raw_id, user)
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, fresh.raw_id, services)
    return response


@router.post("/logout")
def logout(
    services: ServicesDep,
    page_session: PageSession,
    csrf_token: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    check_csrf(services, page_session, csrf_token)
    services.sessions.end(page_session.raw_id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE_NAME, path="/")
    return response


@router.get("/logout", response_class=HTMLResponse)
def logout_form(request: Request, services: ServicesDep, page_session: PageSession) -> Response:
    """A confirmation page: logging out changes state, so it takes a POST with a CSRF token."""
    return render(request, services, page_session, "logout.html")
