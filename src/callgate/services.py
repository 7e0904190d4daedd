"""The set of services the composition root builds, and the dependency that hands it out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, cast

from fastapi import Depends, Request

from callgate.apps.service import ApplicationService
from callgate.calls.live import CallControl
from callgate.calls.service import CallHistoryService
from callgate.common.db import Database
from callgate.common.security import Passwords
from callgate.common.storage import FileStore
from callgate.config import Settings
from callgate.events.service import EventHandlerService
from callgate.fax.service import FaxService
from callgate.identity.authentication import Authenticator
from callgate.identity.service import IdentityService
from callgate.oauth.server import OAuthServer
from callgate.phones.service import PhoneService
from callgate.policy.service import AccessPolicy
from callgate.recordings.service import RecordingService
from callgate.routing.service import RoutingService
from callgate.sounds.service import SoundService
from callgate.voicemail.service import VoicemailService
from callgate.web.sessions import SessionService


@dataclass
class Services:
    settings: Settings
    database: Database
    identity: IdentityService
    apps: ApplicationService
    authenticator: Authenticator
    sessions: SessionService
    oauth: OAuthServer
    access: AccessPolicy
    events: EventHandlerService
    files: FileStore
    calls: CallHistoryService
    recordings: RecordingService
    voicemail: VoicemailService
    sounds: SoundService
    fax: FaxService
    phones: PhoneService
    routing: RoutingService
    # The call engine: in this process (one HTTP worker), over the control channel (several
    # workers, or ``callgate sip`` elsewhere), or None when there is no PBX to reach.
    call_control: CallControl | None = None

    @classmethod
    def build(cls, settings: Settings, database: Database) -> Services:
        passwords = Passwords(
            settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism
        )
        authenticator = Authenticator(database, settings, passwords)
        files = FileStore(settings.data_dir)
        return cls(
            settings=settings,
            database=database,
            identity=IdentityService(database, passwords, settings, files),
            apps=ApplicationService(database),
            authenticator=authenticator,
            sessions=SessionService(database, settings),
            oauth=OAuthServer(database, settings, authenticator),
            access=AccessPolicy(database, settings),
            events=EventHandlerService(database, settings),
            files=files,
            calls=CallHistoryService(database),
            recordings=RecordingService(database, files),
            voicemail=VoicemailService(database, files),
            sounds=SoundService(database, settings, files),
            fax=FaxService(database, settings, files),
            phones=PhoneService(database, settings),
            routing=RoutingService(database),
        )


def get_services(request: Request) -> Services:
    return cast(Services, request.app.state.services)


async def services_dependency(request: Request) -> Services:
    """``get_services`` as a route dependency. ``async`` on purpose: FastAPI runs a plain-function
    dependency in the thread pool, a hop per request for a lookup that cannot block."""
    return get_services(request)


ServicesDep = Annotated[Services, Depends(services_dependency)]
