"""The HTTP edge of the authorization server: ``/oauth/*`` and the RFC 8414 metadata.

Routes read the request (the form body first, asynchronously), hand a plain
:class:`HttpRequest` to :class:`callgate.oauth.server.OAuthServer` in the thread pool (Authlib
and the database are synchronous, the event loop must not wait on them) and turn its answer into
a Starlette response. OAuth endpoints keep the RFC 6749 error format; the authorize endpoint
answers with pages or redirects.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from callgate.apps.models import AccessLevel
from callgate.oauth.server import (
    AUTHORIZATION_PARAMS,
    AuthorizationOutcome,
    AuthorizationRefused,
    ConsentNeeded,
    HttpRequest,
    HttpResponse,
)
from callgate.services import Services, ServicesDep, get_services
from callgate.web.pages import LoggedIn, PageSession, check_csrf, render
from callgate.web.sessions import BrowserSession

router = APIRouter(include_in_schema=False)


DECISIONS = {"allow": True, "deny": False}


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


URLENCODED = "application/x-www-form-urlencoded"
# Far more than any OAuth request needs; the same bound as Starlette's form parser.
MAX_FORM_FIELDS = 1000


async def _form_pairs(request: Request) -> list[tuple[str, str]]:
    # OAuth bodies are url-encoded fields (RFC 6749 §3.2), parsed here directly: Starlette's
    # general form parser costs several times more per token request. Anything else (multipart)
    # still goes through it; file parts have no place in an OAuth body.
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type == URLENCODED:
        body = await request.body()
        try:
            return parse_qsl(
                body.decode("utf-8", errors="replace"),
                keep_blank_values=True,
                max_num_fields=MAX_FORM_FIELDS,
                encoding="utf-8",
                errors="replace",
            )
        except ValueError:  # too many fields
            return []
    async with request.form(max_files=0) as form:
        return [(key, value) for key, value in form.multi_items() if isinstance(value, str)]


async def _http_request(request: Request, *, read_form: bool = True) -> HttpRequest:
    return HttpRequest(
        method=request.method,
        path=request.url.path,
        query=list(request.query_params.multi_items()),
        form=await _form_pairs(request) if read_form else [],
        headers={name.lower(): value for name, value in request.headers.items()},
        address=_address(request),
    )


def _to_response(answer: HttpResponse, *, after_post: bool = False) -> Response:
    headers = dict(answer.headers)
    if isinstance(answer.body, dict):
        return Response(
            json.dumps(answer.body),
            status_code=answer.status,
            headers=headers,
            media_type="application/json",
        )
    # An authorization redirect carries a code: never cache it. After the consent form, 303
    # makes the browser follow with GET (RFC 9700 §4.12).
    headers["Cache-Control"] = "no-store"
    status = 303 if after_post and answer.status == 302 else answer.status
    return Response(status_code=status, headers=headers)


def _present(
    request: Request,
    services: Services,
    page_session: BrowserSession,
    outcome: AuthorizationOutcome,
    *,
    after_post: bool = False,
) -> Response:
    if isinstance(outcome, HttpResponse):
        return _to_response(outcome, after_post=after_post)
    if isinstance(outcome, ConsentNeeded):
        context: dict[str, Any] = {
            "application": outcome.application,
            "owner_login": outcome.owner_login,
            "level_label": outcome.level_label,
            "full_access": outcome.application.access_level == AccessLevel.ALL,
            "redirect_uri": outcome.redirect_uri,
            "params": outcome.params,
        }
        page = render(request, services, page_session, "consent.html", context)
        page.headers["Cache-Control"] = "no-store"
        return page
    return _refused(request, services, page_session, outcome)


def _refused(
    request: Request,
    services: Services,
    page_session: BrowserSession,
    outcome: AuthorizationRefused,
) -> HTMLResponse:
    context = {
        "heading": "This authorization request is not valid",
        "message": f"{outcome.message} You have not been sent back to the application.",
    }
    return render(request, services, page_session, "error.html", context, 400)


@router.get("/oauth/authorize", response_class=HTMLResponse)
async def authorize(
    request: Request, services: ServicesDep, page_session: PageSession, user: LoggedIn
) -> Response:
    http = await _http_request(request, read_form=False)
    outcome = await run_in_threadpool(services.oauth.authorize, http, user)
    return _present(request, services, page_session, outcome)


@router.post("/oauth/authorize", response_class=HTMLResponse)
async def authorize_decision(
    request: Request, services: ServicesDep, page_session: PageSession, user: LoggedIn
) -> Response:
    pairs = await _form_pairs(request)
    fields = dict(reversed(pairs))
    check_csrf(services, page_session, fields.get("csrf_token"))
    allow = DECISIONS.get(fields.get("decision", ""))
    if allow is None:
        refused = AuthorizationRefused("The form did not say whether to allow or deny access.")
        return _refused(request, services, page_session, refused)
    http = HttpRequest(
        method="POST",
        path=request.url.path,
        form=[(key, value) for key, value in pairs if key in AUTHORIZATION_PARAMS],
        headers={name.lower(): value for name, value in request.headers.items()},
        address=_address(request),
    )
    outcome = await run_in_threadpool(services.oauth.decide, http, user, allow)
    return _present(request, services, page_session, outcome, after_post=True)


# The endpoints below take the services from the request, not through ``ServicesDep``: on the
# token path even resolving an (async) dependency is work that buys nothing.


@router.post("/oauth/token")
async def token(request: Request) -> Response:
    http = await _http_request(request)
    return _to_response(await run_in_threadpool(get_services(request).oauth.token, http))


@router.post("/oauth/revoke")
async def revoke(request: Request) -> Response:
    http = await _http_request(request)
    return _to_response(await run_in_threadpool(get_services(request).oauth.revoke, http))


@router.post("/oauth/introspect")
async def introspect(request: Request) -> Response:
    http = await _http_request(request)
    return _to_response(await run_in_threadpool(get_services(request).oauth.introspect, http))


@router.get("/.well-known/oauth-authorization-server")
async def metadata(request: Request) -> JSONResponse:
    return JSONResponse(get_services(request).oauth.metadata())
