"""API routes of voicemail: ``/client/{id}/voicemail/`` and ``/extension/{id}/voicemail/``.

As with recordings (the routes of every audio artefact, ``api/artefacts.py``),
``GET …/voicemail/{uuid}`` answers the WAV file, ``…/{uuid}/info`` the JSON object of the list,
and ``DELETE`` (a Call API operation) removes the message and its file.
"""

from __future__ import annotations

from fastapi import APIRouter

from callgate.api.artefacts import ArtefactRoutes, add_artefact_routes
from callgate.policy.http import PolicyRoute
from callgate.voicemail.repository import VoicemailFilter
from callgate.voicemail.schemas import VoicemailOut

router = APIRouter(route_class=PolicyRoute, tags=["voicemail"])

ROUTES = ArtefactRoutes(
    segment="voicemail",
    key="uuid",
    key_description="The message's uuid.",
    singular="voicemail",
    plural="voicemail",
    thing="message",
    client_list_doc="Voicemail messages of the client's extensions, newest first.",
    extension_list_doc="Voicemail messages left for the extension, newest first.",
    extension_filter_doc="Only messages for this extension.",
    service=lambda services: services.voicemail,
    where=VoicemailFilter,
    out=VoicemailOut,
    render=VoicemailOut.of,
)
add_artefact_routes(router, ROUTES)
