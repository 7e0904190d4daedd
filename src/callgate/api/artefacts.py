"""The API routes of an audio artefact kind (recordings, voicemail), built from a description.

For a kind served under ``…/<segment>/`` each realm, ``/client/{client_id}`` and
``/extension/{extension_id}``, gets four routes:

- ``GET …/<segment>/`` — the list, a JSON array newest first by default, with the total in
  ``X-Total-Count`` (the client realm may narrow it to one extension);
- ``GET …/<segment>/{<key>}`` — the WAV file itself, as the original API does (``audio/wav``,
  ``Content-Disposition: attachment; filename="<key>.wav"``);
- ``GET …/<segment>/{<key>}/info`` — the same JSON object as in the list;
- ``DELETE …/<segment>/{<key>}`` — a Call API operation: the row and its file go (204).

Each endpoint is an ordinary function whose name, docstring and signature are set from the
description, so that FastAPI, the access policy and the OpenAPI document (operation ids,
summaries, parameters) see what a written-out route would show.
"""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path as FilePath
from types import GenericAlias
from typing import Annotated, Any, Generic, TypeVar

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel

from callgate.api.files import attachment
from callgate.calls.schemas import MAX_ID, PageRequest, PageRequestDep, TimeWindow, TimeWindowDep
from callgate.common.artefacts import ArtefactService
from callgate.policy.http import ClientRealm, ExtensionRealmDep
from callgate.policy.operations import Operation, declare
from callgate.policy.principal import ExtensionRealm
from callgate.services import Services, ServicesDep

WhereT = TypeVar("WhereT")
ViewT = TypeVar("ViewT")
OutT = TypeVar("OutT", bound=BaseModel)

WAV_MEDIA_TYPE = "audio/wav"
WAV_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The WAV file, as an attachment named <uuid>.wav.",
        "content": {WAV_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
    }
}


def wav_download(path: FilePath, name: str) -> FileResponse:
    """A stored WAV as a download named ``<name>.wav``."""
    return attachment(path, WAV_MEDIA_TYPE, f"{name}.wav")


@dataclass(frozen=True)
class ArtefactRoutes(Generic[WhereT, ViewT, OutT]):
    """What the routes of one artefact kind differ in."""

    segment: str
    """The path segment after the realm: ``record``."""
    key: str
    """The path parameter naming one artefact: ``record_uuid``."""
    key_description: str
    singular: str
    """Names the endpoints of one artefact: ``download_client_<singular>``."""
    plural: str
    """Names the list endpoints: ``list_client_<plural>``."""
    thing: str
    """What the docstrings call one: ``The <thing>'s WAV file.``"""
    client_list_doc: str
    extension_list_doc: str
    extension_filter_doc: str
    """Describes the client list's ``extension_id`` query parameter."""
    service: Callable[[Services], ArtefactService[Any, WhereT, Any, ViewT]]
    where: Callable[[int, int | None, dt.datetime | None, dt.datetime | None], WhereT]
    """The repository's filter from client, extension, start and end (exclusive)."""
    out: type[OutT]
    render: Callable[[ViewT], OutT]


@dataclass(frozen=True)
class _Realm:
    name: str
    prefix: str
    parameter: inspect.Parameter
    owner: Callable[[Any], tuple[int, int | None]]
    """(client id, extension id or None) of the realm's path value."""


def _client(client_id: int) -> tuple[int, int | None]:
    return client_id, None


def _extension(extension: ExtensionRealm) -> tuple[int, int | None]:
    return extension.client_id, extension.id


_PLAIN = inspect.Parameter.POSITIONAL_OR_KEYWORD
_CLIENT_ID = inspect.Parameter("client_id", _PLAIN, annotation=ClientRealm)
_EXTENSION = inspect.Parameter("extension", _PLAIN, annotation=ExtensionRealmDep)
_REALMS = (
    _Realm("client", "/client/{client_id}", _CLIENT_ID, _client),
    _Realm("extension", "/extension/{extension_id}", _EXTENSION, _extension),
)


def _endpoint(
    call: Callable[..., Any], name: str, doc: str, parameters: list[inspect.Parameter], returns: Any
) -> Callable[..., Any]:
    """``call`` dressed as the route function it stands for (FastAPI reads the signature)."""
    endpoint: Any = call
    endpoint.__name__ = endpoint.__qualname__ = name
    endpoint.__doc__ = doc
    endpoint.__signature__ = inspect.Signature(parameters, return_annotation=returns)
    return call


def add_artefact_routes(router: APIRouter, spec: ArtefactRoutes[Any, Any, Any]) -> None:
    """Add the list, download, info and delete routes of ``spec`` for both realms to ``router``."""
    for realm in _REALMS:
        _add_realm_routes(router, spec, realm)


def _add_realm_routes(
    router: APIRouter, spec: ArtefactRoutes[WhereT, ViewT, OutT], realm: _Realm
) -> None:
    services = inspect.Parameter("services", _PLAIN, annotation=ServicesDep)
    key_type = Annotated[str, Path(max_length=64, description=spec.key_description)]
    key = inspect.Parameter(spec.key, _PLAIN, annotation=key_type)
    one = f"{realm.prefix}/{spec.segment}/{{{spec.key}}}"

    def listed(**values: Any) -> list[OutT]:
        client_id, extension_id = realm.owner(values[realm.parameter.name])
        window: TimeWindow = values["window"]
        paging: PageRequest = values["paging"]
        where = spec.where(
            client_id, values.get("extension_id", extension_id), window.start, window.end
        )
        result = spec.service(values["services"]).list(
            where, page=paging.page, per_page=paging.per_page, newest_first=paging.newest_first
        )
        response: Response = values["response"]
        response.headers["X-Total-Count"] = str(result.total)
        return [spec.render(view) for view in result.items]

    def download(**values: Any) -> FileResponse:
        client_id, extension_id = realm.owner(values[realm.parameter.name])
        service = spec.service(values["services"])
        row, path = service.open(client_id, values[spec.key], extension_id)
        return wav_download(path, service.key_of(row))

    def info(**values: Any) -> OutT:
        client_id, extension_id = realm.owner(values[realm.parameter.name])
        return spec.render(
            spec.service(values["services"]).get(client_id, values[spec.key], extension_id)
        )

    def delete(**values: Any) -> Response:
        client_id, extension_id = realm.owner(values[realm.parameter.name])
        spec.service(values["services"]).delete(client_id, values[spec.key], extension_id)
        return Response(status_code=204)

    list_parameters = [
        realm.parameter,
        services,
        inspect.Parameter("response", _PLAIN, annotation=Response),
        inspect.Parameter("window", _PLAIN, annotation=TimeWindowDep),
        inspect.Parameter("paging", _PLAIN, annotation=PageRequestDep),
    ]
    list_doc = spec.extension_list_doc
    if realm.name == "client":
        only = Query(ge=1, le=MAX_ID, description=spec.extension_filter_doc)
        list_parameters.append(
            inspect.Parameter(
                "extension_id", _PLAIN, annotation=Annotated[int | None, only], default=None
            )
        )
        list_doc = spec.client_list_doc
    thing = spec.thing
    router.get(f"{realm.prefix}/{spec.segment}/", openapi_extra=declare(Operation.READ))(
        _endpoint(
            listed,
            f"list_{realm.name}_{spec.plural}",
            list_doc,
            list_parameters,
            GenericAlias(list, (spec.out,)),
        )
    )
    router.get(
        one,
        response_class=FileResponse,
        responses=WAV_RESPONSES,
        openapi_extra=declare(Operation.READ),
    )(
        _endpoint(
            download,
            f"download_{realm.name}_{spec.singular}",
            f"The {thing}'s WAV file.",
            [realm.parameter, key, services],
            FileResponse,
        )
    )
    router.get(f"{one}/info", openapi_extra=declare(Operation.READ))(
        _endpoint(
            info,
            f"get_{realm.name}_{spec.singular}",
            f"The {thing}'s details, as in the list.",
            [realm.parameter, key, services],
            spec.out,
        )
    )
    router.delete(one, status_code=204, openapi_extra=declare(Operation.CALL_API))(
        _endpoint(
            delete,
            f"delete_{realm.name}_{spec.singular}",
            f"Delete the {thing} and its file.",
            [realm.parameter, key, services],
            Response,
        )
    )
