"""API routes of recordings: ``/client/{id}/record/`` and ``/extension/{id}/record/``.

``GET …/record/{record_uuid}`` answers the WAV file itself, as the original API does
(``audio/wav``, ``Content-Disposition: attachment; filename="<record_uuid>.wav"``);
``GET …/record/{record_uuid}/info`` answers the same JSON object as the list. Deleting a
recording is a Call API operation and removes the file with the row. The routes are those of
every audio artefact (``api/artefacts.py``).
"""

from __future__ import annotations

from fastapi import APIRouter

from callgate.api.artefacts import ArtefactRoutes, add_artefact_routes
from callgate.policy.http import PolicyRoute
from callgate.recordings.repository import RecordingFilter
from callgate.recordings.schemas import RecordOut

router = APIRouter(route_class=PolicyRoute, tags=["recordings"])

ROUTES = ArtefactRoutes(
    segment="record",
    key="record_uuid",
    key_description="The recording's record_uuid.",
    singular="record",
    plural="records",
    thing="recording",
    client_list_doc="The client's recordings (a JSON array, as in the original API), newest first.",
    extension_list_doc="The extension's recordings, newest first.",
    extension_filter_doc="Only recordings of this extension.",
    service=lambda services: services.recordings,
    where=RecordingFilter,
    out=RecordOut,
    render=RecordOut.of,
)
add_artefact_routes(router, ROUTES)
