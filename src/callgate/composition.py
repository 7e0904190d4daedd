"""The composition root: builds settings, database, services and the ASGI application."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from callgate.api import router as api_router
from callgate.api.errors import (
    domain_error_response,
    error_body,
    is_api_request,
    status_for,
    validation_error_response,
)
from callgate.apps import http as apps_http
from callgate.common.db import Database
from callgate.common.errors import DomainError
from callgate.config import Settings
from callgate.health import http as health_http
from callgate.oauth import http as oauth_http
from callgate.pbx.channel import RemoteCallControl
from callgate.services import Services
from callgate.web import http as web_http
from callgate.web.headers import SecurityHeadersMiddleware
from callgate.web.pages import CsrfFailed, LoginRequired, login_url, templates

log = logging.getLogger("callgate")


def build_services(settings: Settings, database: Database | None = None) -> Services:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    database = database or Database(settings.effective_database_url)
    return Services.build(settings, database)


def _error_page(request: Request, status_code: int, message: str) -> HTMLResponse:
    return templates.TemplateResponse(
        request, "error.html", {"message": message, "user": None}, status_code=status_code
    )


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> Response:
        if is_api_request(request):
            return domain_error_response(exc)
        return _error_page(request, status_for(exc), exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        if is_api_request(request):
            return validation_error_response(exc)
        return _error_page(request, 400, "The form was not filled in correctly.")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if is_api_request(request):
            status = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
            return JSONResponse(
                error_body(status, str(exc.detail)),
                status_code=exc.status_code,
                headers=getattr(exc, "headers", None),
            )
        return _error_page(request, exc.status_code, str(exc.detail))

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(login_url(exc.next_path), status_code=303)

    @app.exception_handler(CsrfFailed)
    async def _csrf(request: Request, exc: CsrfFailed) -> Response:
        return _error_page(
            request, 403, "The form has expired or did not come from this site. Reload the page."
        )


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    """The whole HTTP application: pages, OAuth2 endpoints and the resource API."""
    if services is None:
        services = build_services(settings or Settings())
    app = FastAPI(
        title="Callgate",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.services = services
    app.add_middleware(SecurityHeadersMiddleware)
    _install_error_handlers(app)
    app.mount(
        "/static", StaticFiles(directory=str(Path(__file__).parent / "web" / "static")), "static"
    )
    # The API first: its router refuses other paths at once, while FastAPI would try every
    # page route for each API request (policy/http.py, ApiRouter).
    app.include_router(api_router.build_router())
    app.include_router(web_http.router)
    app.include_router(oauth_http.router)
    app.include_router(health_http.router)
    app.include_router(apps_http.router)
    # Last: every /api/ver1.0 route, whoever added it, must declare its operation class.
    api_router.refuse_undeclared(app)
    return app


def app_from_environment() -> FastAPI:
    """The factory ``callgate serve`` hands uvicorn: each worker process builds its own app.

    A worker never runs the PBX (only one process may bind the SIP port): it reaches the call
    engine over the control channel.
    """
    settings = Settings()
    services = build_services(settings)
    services.call_control = RemoteCallControl(settings)
    return create_app(settings, services)
