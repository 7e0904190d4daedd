"""The PBX-application pages (SPEC §2): the user's apps, registration, details, authorized apps,
and the administrators' view of every app.

Server-rendered and usable without JavaScript. Every POST form carries the session's CSRF token.
The rules (who may set which type and level, what revokes tokens) live in
:class:`callgate.apps.service.ApplicationService`; these routes only call it and show its refusals
as form errors. Pages that show an App secret are sent with ``Cache-Control: no-store``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from callgate.apps.models import ACCESS_LEVEL_LABELS, AccessLevel, Application, AppStatus, AppType
from callgate.apps.service import RegisteredApp
from callgate.common.errors import InvalidInput, NotFound, PermissionRefused
from callgate.identity.models import User
from callgate.services import Services, ServicesDep
from callgate.web.pages import LoggedIn, PageSession, check_csrf, render
from callgate.web.sessions import BrowserSession

router = APIRouter(prefix="/app", include_in_schema=False)


TYPE_LABELS: dict[str, str] = {
    AppType.PUBLIC: "Public",
    AppType.TRUSTED: "Trusted",
    AppType.PASSWORD_CREDENTIALS: "Password credentials",
}
STATUS_LABELS: dict[str, str] = {AppStatus.ACTIVE: "Active", AppStatus.SUSPENDED: "Suspended"}

# Notices after a redirect are chosen by key, so no text from the URL is ever echoed.
NOTICES: dict[str, str] = {
    "updated": "The application was saved.",
    "deleted": "The application was deleted.",
    "withdrawn": "The permission was withdrawn; the application's tokens for you are revoked.",
    "saved": "The application's settings were changed.",
    "suspended": "The application was suspended; all its tokens are revoked.",
    "activated": "The application was activated.",
}

# Bounds on form input; the service applies the real rules and explains them.
NAME_MAX = 1000
URIS_MAX = 30000
CHOICE_MAX = 40
CSRF_MAX = 128

Csrf = Annotated[str, Form(max_length=CSRF_MAX)]


def _when(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else ""


def _choices(user: User) -> dict[str, list[tuple[str, str]]]:
    """The type and level options this user may pick; admin-only ones are hidden from others."""
    types = [AppType.PUBLIC, AppType.TRUSTED]
    levels = [AccessLevel.CALL_API]
    if user.is_admin:
        types.append(AppType.PASSWORD_CREDENTIALS)
        levels.append(AccessLevel.ALL)
    return {
        "type_choices": [(t.value, TYPE_LABELS[t]) for t in types],
        "level_choices": [(lvl.value, ACCESS_LEVEL_LABELS[lvl]) for lvl in levels],
    }


def _page(
    request: Request,
    services: Services,
    page_session: BrowserSession,
    template: str,
    context: dict[str, Any],
    status_code: int = 200,
) -> HTMLResponse:
    full: dict[str, Any] = {
        "level_labels": ACCESS_LEVEL_LABELS,
        "type_labels": TYPE_LABELS,
        "status_labels": STATUS_LABELS,
        "when": _when,
    }
    full.update(context)
    return render(request, services, page_session, template, full, status_code)


def _notice(key: str) -> str | None:
    return NOTICES.get(key)


def _owner_logins(services: Services, owner_ids: Iterable[int]) -> dict[int, str]:
    """Logins of the given users, for display next to applications they own."""
    wanted = set(owner_ids)
    if not wanted:
        return {}
    with services.database.read() as session:
        rows = session.execute(select(User.id, User.login).where(User.id.in_(wanted))).all()
    return {row[0]: row[1] for row in rows}


def _error_page(
    request: Request,
    services: Services,
    page_session: BrowserSession,
    status_code: int,
    message: str,
) -> HTMLResponse:
    heading = {403: "Not allowed", 404: "Not found"}.get(status_code)
    return render(
        request,
        services,
        page_session,
        "error.html",
        {"message": message, "heading": heading},
        status_code,
    )


def _secret_page(
    request: Request,
    services: Services,
    page_session: BrowserSession,
    registered: RegisteredApp,
    heading: str,
) -> HTMLResponse:
    response = _page(
        request,
        services,
        page_session,
        "app_secret.html",
        {"app": registered.application, "app_secret": registered.app_secret, "heading": heading},
    )
    # The secret must not be kept by the browser or any cache: it is shown exactly once.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def _redirect(path: str, notice: str | None = None, **query: str) -> RedirectResponse:
    params = {k: v for k, v in query.items() if v}
    if notice:
        params["notice"] = notice
    return RedirectResponse(path + ("?" + urlencode(params) if params else ""), status_code=303)


# --- the user's applications -------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def app_list(
    request: Request,
    services: ServicesDep,
    page_session: PageSession,
    user: LoggedIn,
    notice: str = "",
) -> Response:
    applications = services.apps.list_owned(user)
    return _page(
        request,
        services,
        page_session,
        "app_list.html",
        {"applications": applications, "notice": _notice(notice)},
    )


def _register_form(
    request: Request,
    services: Services,
    page_session: BrowserSession,
    user: User,
    values: dict[str, str],
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    context: dict[str, Any] = {"values": values, "error": error}
    context.update(_choices(user))
    return _page(request, services, page_session, "app_register.html", context, status_code)


@router.get("/register", response_class=HTMLResponse)
def register_form(
    request: Request, services: ServicesDep, page_session: PageSession, user: LoggedIn
) -> Response:
    values = {
        "name": "",
        "redirect_uris": "",
        "type": AppType.PUBLIC.value,
        "access_level": AccessLevel.CALL_API.value,
    }
    return _register_form(request, services, page_session, user, values)


@router.post("/register", response_class=HTMLResponse)
def register_submit(
    request: Request,
    services: ServicesDep,
    page_session: PageSession,
    user: LoggedIn,
    csrf_token: Csrf = "",
    name: Annotated[str, Form(max_length=NAME_MAX)] = "",
    redirect_uris: Annotated[str, Form(max_length=URIS_MAX)] = "",
    type_: Annotated[str, Form(alias="type", max_length=CHOICE_MAX)] = AppType.PUBLIC.value,
    access_level: Annotated[str, Form(max_length=CHOICE_MAX)] = AccessLevel.CALL_API.value,
) -> Response:
    check_csrf(services, page_session, csrf_token)
    values = {
        "name": name,
        "redirect_uris": redirect_uris,
        "type": type_,
        "access_level": access_level,
    }
    try:
        registered = services.apps.register(
            user,
            name=name,
            redirect_uris=redirect_uris,
            type_=type_,
            access_level=access_level,
        )
    except PermissionRefused as exc:
        return _register_form(request, services, page_session, user, values, exc.message, 403)
    except InvalidInput as exc:
        return _register_form(request, services, page_session, user, values, exc.message, 400)
    return _secret_page(request, services, page_session, registered, "Application registered")


# --- applications this user has authorized -----------------------------------------------------


@router.get("/authorized", response_class=HTMLResponse)
def authorized_list(
    request: Request,
    services: ServicesDep,
    page_session: PageSession,
    user: LoggedIn,
    notice: str = "",
) -> Response:
    authorized = services.apps.authorized_apps(user)
    owners = _owner_logins(services, (app.owner_id for app, _ in authorized))
    return _page(
        request,
        services,
        page_session,
        "app_authorized.html",
        {"authorized": authorized, "owners": owners, "notice": _notice(notice)},
    )


@router.post("/authorized/{app_id}/withdraw")
def authorized_withdraw(
    request: Request,
    services: ServicesDep,
    page_session: PageSession,
    user: LoggedIn,
    app_id: str,
    csrf_token: Csrf = "",
) -> Response:
    check_csrf(services, page_session, csrf_token)
    try:
        services.apps.withdraw(user, app_id)
    except NotFound as exc:
        return _error_page(request, services, page_session, 404, exc.message)
    return _redirect("/app/authorized", "withdrawn")


# --- the administrators' view ------------------------------------------------------------------


def _admin_page(
    request: Request,
    services: Services,
    page_session: BrowserSession,
    user: User,
    q: str,
    notice: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    applications = services.apps.search(user, q.strip())
    owners = _owner_logins(services, (app.owner_id for app in applications))
    context = {
        "applications": applications,
        "owners": owners,
        "q": q,
        "notice": notice,
        "error": error,
        "all_types": [(t.value, TYPE_LABELS[t]) for t in AppType],
        "all_levels": [(lvl.value, ACCESS_LEVEL_LABELS[lvl]) for lvl in AccessLevel],
    }
    return _page(request, services, page_session, "app_admin.html", context, status_code)


def _refuse_non_admin(
    request: Request, services: Services, page_session: BrowserSession, user: User
) -> HTMLResponse | None:
    if user.is_admin:
        return None
    return _error_page(
        request, services, page_session, 403, "Only an administrator may see every application."
    )


@router.get("/admin", response_class=HTMLResponse)
def admin_list(
    request: Request,
    services: ServicesDep,
    page_session: PageSession,
    user: LoggedIn,
    q: Annotated[str, Query(max_length=200)] = "",
    notice: str = "",
) -> Response:
    refused = _refuse_non_admin(request, services, page_session, user)
    if refused is not None:
        return refused
    return _admin_page(request, services, page_session, user, q, _notice(notice))


@router.post("/admin/{app_id}/settings", response_class=HTMLResponse)
def admin_settings(
    request: Request,
    services: ServicesDep,
    page_session: PageSession,
    user: LoggedIn,
    app_id: str,
    csrf_token: Csrf = "",
    type_: Annotated[str, Form(alias="type", max_length=CHOICE_MAX)] = "",
    access_level: Annotated[str, Form(max_length=CHOICE_MAX)] = "",
    q: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    check_csrf(services, page_session, csrf_token)
    refused = _refuse_non_admin(request, services, page_session, user)
    if refused is not None:
        return refused
    try:
        application = services.apps.get_for(user, app_id)
        # Only what changed is applied: a type change revokes the app's tokens.
        if type_ and type_ != application.type:
            services.apps.set_type(user, app_id, type_)
        if access_level and access_level != application.access_level:
            services.apps.set_access_level(user, app_id, access_level)
    except NotFound as exc:
        return _error_page(request, services, page_session, 404, exc.message)
    except (InvalidInput, PermissionRefused) as exc:
        code = 403 if isinstance(exc, PermissionRefused) else 400
        return _admin_page(
            request, services, page_session, user, q, error=exc.message, status_code=code
        )
    return _redirect("/app/admin", "saved", q=q)


@router.post("/admin/{app_id}/status", response_class=HTMLResponse)
def admin_status(
    request: Request,
    services: ServicesDep,
    page_session: PageSession,
    user: LoggedIn,
    app_id: str,
    csrf_token: Csrf = "",
    status: Annotated[str, Form(max_length=CHOICE_MAX)] = "",
    q: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    check_csrf(services, page_session, csrf_token)
    refused = _refuse_non_admin(request, services, page_session, user)
    if refused is not None:
        return refused
    try:
        services.apps.set_status(user, app_id, status)
    except NotFound as exc:
        return _error_page(request, services, page_session, 404, exc.message)
    except InvalidInput as exc:
        return _admin_page(
            request, services, page_session, user, q, error=exc.message, status_code=400
        )
    notice = "suspended" if status == AppStatus.SUSPENDED else "activated"
    return _redirect("/app/admin", notice, q=q)


# --- one application ---------------------------------------------------------------------------


def _detail_page(
    request: Request,
    services: Services,
    page_session: BrowserSession,
    application: Application,
    *,
    values: dict[str, str] | None = None,
    notice: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    owners = _owner_logins(services, [application.owner_id])
    context = {
        "app": application,
        "owner_login": owners.get(application.owner_id, ""),
        "values": values
        or {"name": application.name, "redirect_uris": " ".join(application.redirect_uri_list)},
        "notice": notice,
        "error": error,
    }
    return _page(request, services, page_session, "app_detail.html", context, status_code)


@router.get("/{app_id}", response_class=HTMLResponse)
def app_detail(
    request: Request,
    services: ServicesDep,
    page_session: PageSession,
    user: LoggedIn,
    app_id: str,
    notice: str = "",
) -> Response:
    try:
        application = services.apps.get_for(user, app_id)
    except NotFound as exc:
        return _error_page(request, services, page_session, 404, exc.message)
    return _detail_page(request, services, page_session, application, notice=_notice(notice))


@router.post("/{app_id}/edit", response_class=HTMLResponse)
def app_edit(
    request: Request,
    services: ServicesDep,
    page_session: PageSession,
    user: LoggedIn,
    app_id: str,
    csrf_token: Csrf = "",
    name: Annotated[str, Form(max_length=NAME_MAX)] = "",
    redirect_uris: Annotated[str, Form(max_length=URIS_MAX)] = "",
) -> Response:
    check_csrf(services, page_session, csrf_token)
    try:
        services.apps.update(user, app_id, name=name, redirect_uris=redirect_uris)
    except NotFound as exc:
        return _error_page(request, services, page_session, 404, exc.message)
    except InvalidInput as exc:
        application = services.apps.get_for(user, app_id)
        values = {"name": name, "redirect_uris": redirect_uris}
        return _detail_page(
            request,
            services,
            page_session,
            application,
            values=values,
            error=exc.message,
            status_code=400,
        )
    return _redirect(f"/app/{app_id}", "updated")


@router.post("/{app_id}/regenerate", response_class=HTMLResponse)
def app_regenerate(
    request: Request,
    services: ServicesDep,
    page_session: PageSession,
    user: LoggedIn,
    app_id: str,
    csrf_token: Csrf = "",
) -> Response:
    check_csrf(services, page_session, csrf_token)
    try:
        registered = services.apps.regenerate_secret(user, app_id)
    except NotFound as exc:
        return _error_page(request, services, page_session, 404, exc.message)
    return _secret_page(request, services, page_session, registered, "New App secret")


@router.post("/{app_id}/delete", response_class=HTMLResponse)
def app_delete(
    request: Request,
    services: ServicesDep,
    page_session: PageSession,
    user: LoggedIn,
    app_id: str,
    csrf_token: Csrf = "",
    confirm: Annotated[str, Form(max_length=CHOICE_MAX)] = "",
) -> Response:
    check_csrf(services, page_session, csrf_token)
    try:
        application = services.apps.get_for(user, app_id)
        if confirm != "yes":
            return _detail_page(
                request,
                services,
                page_session,
                application,
                error="Tick the box to confirm that the application should be deleted.",
                status_code=400,
            )
        services.apps.delete(user, app_id)
    except NotFound as exc:
        return _error_page(request, services, page_session, 404, exc.message)
    return _redirect("/app/", "deleted")
