"""The set of services the composition root builds, and the dependency that hands it out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from fastapi import Request

from callgate.apps.service import ApplicationService
from callgate.common.db import Database
from callgate.common.security import Passwords
from callgate.common.storage import FileStore
from callgate.config import Settings
from callgate.events.service import EventHandlerService
from callgate.identity.authentication import Authenticator
from callgate.identity.service import IdentityService
from callgate.oauth.server import OAuthServer
from callgate.policy.service import AccessPolicy
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

    @classmethod
    def build(cls, settings: Settings, database: Database) -> Services:
        passwords = Passwords(
            settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism
        )
        authenticator = Authenticator(database, settings, passwords)
        return cls(
            settings=settings,
            database=database,
            identity=IdentityService(database, passwords),
            apps=ApplicationService(database),
            authenticator=authenticator,
            sessions=SessionService(database, settings),
            oauth=OAuthServer(database, settings, authenticator),
            access=AccessPolicy(database, settings),
            events=EventHandlerService(database, settings),
            files=FileStore(settings.data_dir),
        )


def get_services(request: Request) -> Services:
    return cast(Services, request.app.state.services)
