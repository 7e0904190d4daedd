"""Routes of the API explorer: ``/api/ver1.0/client_api_explorer/`` and its assets.

The explorer is Swagger UI on ``/api/ver1.0/openapi.json``. It must work with no internet
access, so every asset comes from this server: Swagger UI's script and stylesheet from the
``fastapi-offline`` package (which ships a current Swagger UI 5, able to read OpenAPI 3.1), the
page and its start script from ``static/`` beside this module. A token is obtained in the page
with Swagger UI's OAuth2 client-credentials flow against ``/oauth/token`` (the document's
``appCredentials`` scheme), as the original explorer did for trusted applications.

These routes are not API resources: they are declared ``public`` (no token), like the document.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Final

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse
from starlette.responses import Response

from callgate.common.errors import NotFound
from callgate.policy.http import PolicyRoute
from callgate.policy.operations import Operation, declare

EXPLORER_PATH: Final = "/client_api_explorer/"
OWN_ASSETS: Final = Path(__file__).parent / "static"
SWAGGER_UI_ASSETS: Final = Path(str(resources.files("fastapi_offline") / "static"))

# Every file the page may load, and where it comes from; nothing else is served.
ASSETS: Final[dict[str, tuple[Path, str]]] = {
    "swagger-ui-bundle.js": (SWAGGER_UI_ASSETS / "swagger-ui-bundle.js", "text/javascript"),
    "swagger-ui.css": (SWAGGER_UI_ASSETS / "swagger-ui.css", "text/css"),
    "favicon.png": (SWAGGER_UI_ASSETS / "favicon.png", "image/png"),
    "explorer.js": (OWN_ASSETS / "explorer.js", "text/javascript"),
    "explorer.css": (OWN_ASSETS / "explorer.css", "text/css"),
}

# The site-wide policy (web/headers.py) plus images from data: URIs, which Swagger UI's
# stylesheet uses for its icons. Scripts stay 'self' only: no inline script, no eval.
PAGE_CSP: Final = (
    "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'none'; object-src 'none'"
)
ASSET_CACHE: Final = "public, max-age=3600"

router = APIRouter(route_class=PolicyRoute, tags=["explorer"])


@router.get(EXPLORER_PATH, include_in_schema=False, openapi_extra=declare(Operation.PUBLIC))
async def explorer_page() -> Response:
    """The explorer's page; it loads Swagger UI and the document from this server."""
    return FileResponse(
        OWN_ASSETS / "index.html",
        media_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-cache"},
    )


@router.get(
    "/client_api_explorer", include_in_schema=False, openapi_extra=declare(Operation.PUBLIC)
)
async def explorer_without_slash() -> Response:
    # The page loads its assets by relative URL, so it must be seen under the folder's URL.
    return RedirectResponse("client_api_explorer/", status_code=308)


@router.get(
    EXPLORER_PATH + "{asset}", include_in_schema=False, openapi_extra=declare(Operation.PUBLIC)
)
async def explorer_asset(asset: str) -> Response:
    """One of the page's scripts, stylesheets or icons."""
    found = ASSETS.get(asset)
    if found is None:
        raise NotFound(f"The explorer has no file {asset!r}.")
    path, media_type = found
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": ASSET_CACHE})
