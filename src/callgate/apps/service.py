"""Registering and managing PBX applications under the rules of SPEC §2.

Only an admin may set type ``password_credentials`` or level ``all``; the secret is shown once
and stored as a hash; regenerating it, suspending or deleting the app revokes all its tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from callgate.apps.models import AccessLevel, Application, AppStatus, AppType, Consent
from callgate.apps.repository import ApplicationRepository
from callgate.audit.service import record
from callgate.common.clock import utcnow
from callgate.common.db import Database
from callgate.common.errors import InvalidInput, NotFound, PermissionRefused
from callgate.common.security import hash_secret, new_app_id, new_secret
from callgate.identity.models import User
from callgate.oauth.repository import TokenRepository

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
MAX_REDIRECT_URIS = 10


@dataclass(frozen=True)
class RegisteredApp:
    """An application with its secret in clear, as shown once after creation or regeneration."""

    application: Application
    app_secret: str


def parse_redirect_uris(text: str) -> list[str]:
    """Split and validate space-separated redirect URIs.

    Each must be absolute, without a fragment, and ``https`` unless it points at loopback
    (native and development clients listen on 127.0.0.1).
    """
    uris = text.split()
    if len(uris) > MAX_REDIRECT_URIS:
        raise InvalidInput(
            f"At most {MAX_REDIRECT_URIS} redirect URIs are allowed.", {"redirect_uris": "too many"}
        )
    for uri in uris:
        parts = urlsplit(uri)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise InvalidInput(
                f"The redirect URI {uri!r} is not an absolute http(s) URI.",
                {"redirect_uris": "not absolute"},
            )
        if parts.fragment or "#" in uri:
            raise InvalidInput(
                f"The redirect URI {uri!r} must not contain a fragment.",
                {"redirect_uris": "fragment"},
            )
        if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
            raise InvalidInput(
                f"The redirect URI {uri!r} must use https (http is allowed only for loopback).",
                {"redirect_uris": "not https"},
            )
    return list(dict.fromkeys(uris))


def _check_type(actor: User, type_: str) -> None:
    if type_ not in set(AppType):
        raise InvalidInput(
            f"The application type must be one of {', '.join(AppType)}.", {"type": type_}
        )
    if not actor.is_admin and type_ == AppType.PASSWORD_CREDENTIALS:
        raise PermissionRefused(
            "Only an administrator may set the application type password_credentials."
        )


def _check_level(actor: User, level: str) -> None:
    if level not in set(AccessLevel):
        raise InvalidInput(
            f"The access level must be one of {', '.join(AccessLevel)}.", {"access_level": level}
        )
    if not actor.is_admin and level == AccessLevel.ALL:
        raise PermissionRefused("Only an administrator may set the access level All.")


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInput("The application name must have 1 to 200 characters.", {"name": "len"})
    return name


class ApplicationService:
    def __init__(self, database: Database) -> None:
        self.database = database

    def register(
        self,
        actor: User,
        *,
        name: str,
        redirect_uris: str = "",
        type_: str = AppType.PUBLIC,
        access_level: str = AccessLevel.CALL_API,
        owner: User | None = None,
    ) -> RegisteredApp:
        """Register an app owned by ``owner`` (default: the actor)."""
        name = _check_name(name)
        uris = parse_redirect_uris(redirect_uris)
        _check_type(actor, type_)
        _check_level(actor, access_level)
        if type_ == AppType.PUBLIC and not uris:
            raise InvalidInput(
                "A public application needs at least one redirect URI.",
                {"redirect_uris": "missing"},
            )
        secret = new_secret()
        with self.database.write() as session:
            application = Application(
                app_id=new_app_id(),
                secret_hash=hash_secret(secret),
                name=name,
                redirect_uris=" ".join(uris),
                type=type_,
                access_level=access_level,
                require_pkce=True,
                status=AppStatus.ACTIVE,
                owner_id=(owner or actor).id,
            )
            ApplicationRepository(session).add(application)
            record(session, "app_registered", user_id=actor.id, app_id=application.app_id)
            return RegisteredApp(application, secret)

    def get_for(self, actor: User, app_id: str) -> Application:
        """The app, if the actor owns it or is an admin."""
        with self.database.read() as session:
            application = ApplicationRepository(session).by_app_id(app_id)
        if application is None or (application.owner_id != actor.id and not actor.is_admin):
            raise NotFound(f"There is no application {app_id} of yours.")
        return application

    def list_owned(self, actor: User) -> Sequence[Application]:
        with self.database.read() as session:
            return ApplicationRepository(session).owned_by(actor.id)

    def search(self, actor: User, text: str = "") -> Sequence[Application]:
        if not actor.is_admin:
            raise PermissionRefused("Only an administrator may list every application.")
        with self.database.read() as session:
            return ApplicationRepository(session).search(text)

    def update(self, actor: User, app_id: str, *, name: str, redirect_uris: str) -> Application:
        name = _check_name(name)
        uris = parse_redirect_uris(redirect_uris)
        with self.database.write() as session:
            application = self._owned(ApplicationRepository(session), actor, app_id)
            if application.type == AppType.PUBLIC and not uris:
                raise InvalidInput(
                    "A public application needs at least one redirect URI.",
                    {"redirect_uris": "missing"},
                )
            application.name = name
            application.redirect_uris = " ".join(uris)
            session.flush()
            record(session, "app_updated", user_id=actor.id, app_id=app_id)
            return application

    def regenerate_secret(self, actor: User, app_id: str) -> RegisteredApp:
        secret = new_secret()
        with self.database.write() as session:
            application = self._owned(ApplicationRepository(session), actor, app_id)
            application.secret_hash = hash_secret(secret)
            application.secret_rotated_at = utcnow()
            revoked = TokenRepository(session).revoke_for_application(application.id)
            record(
                session,
                "app_secret_regenerated",
                user_id=actor.id,
                app_id=app_id,
                detail=f"revoked_tokens={revoked}",
            )
            return RegisteredApp(application, secret)

    def delete(self, actor: User, app_id: str) -> None:
        with self.database.write() as session:
            repo = ApplicationRepository(session)
            application = self._owned(repo, actor, app_id)
            TokenRepository(session).revoke_for_application(application.id)
            repo.delete(application)
            record(session, "app_deleted", user_id=actor.id, app_id=app_id)

    def set_access_level(self, actor: User, app_id: str, level: str) -> Application:
        with self.database.write() as session:
            application = self._owned(ApplicationRepository(session), actor, app_id)
            _check_level(actor, level)
            application.access_level = level
            record(session, "app_level_changed", user_id=actor.id, app_id=app_id, detail=level)
            return application

    def set_type(self, actor: User, app_id: str, type_: str) -> Application:
        with self.database.write() as session:
            application = self._owned(ApplicationRepository(session), actor, app_id)
            _check_type(actor, type_)
            if type_ == AppType.PUBLIC and not application.redirect_uri_list:
                raise InvalidInput(
                    "A public application needs at least one redirect URI.",
                    {"redirect_uris": "missing"},
                )
            if type_ != application.type:
                # Tokens were issued under the old type's grant; they do not carry over.
                TokenRepository(session).revoke_for_application(application.id)
            application.type = type_
            record(session, "app_type_changed", user_id=actor.id, app_id=app_id, detail=type_)
            return application

    def set_status(self, actor: User, app_id: str, status: str) -> Application:
        if status not in set(AppStatus):
            raise InvalidInput(
                f"The status must be one of {', '.join(AppStatus)}.", {"status": status}
            )
        with self.database.write() as session:
            application = self._owned(ApplicationRepository(session), actor, app_id)
            application.status = status
            if status == AppStatus.SUSPENDED:
                TokenRepository(session).revoke_for_application(application.id)
            record(session, "app_status_changed", user_id=actor.id, app_id=app_id, detail=status)
            return application

    def authorized_apps(self, user: User) -> Sequence[tuple[Application, Consent]]:
        with self.database.read() as session:
            return ApplicationRepository(session).authorized_by(user.id)

    def withdraw(self, user: User, app_id: str) -> None:
        """Withdraw the user's consent: the app's tokens for this user are revoked."""
        with self.database.write() as session:
            repo = ApplicationRepository(session)
            application = repo.by_app_id(app_id)
            if application is None or repo.remove_consent(user.id, application.id) == 0:
                raise NotFound(f"You have not authorized an application {app_id}.")
            TokenRepository(session).revoke_for_user_and_application(user.id, application.id)
            record(session, "consent_withdrawn", user_id=user.id, app_id=app_id)

    @staticmethod
    def _owned(repo: ApplicationRepository, actor: User, app_id: str) -> Application:
        application = repo.by_app_id(app_id)
        if application is None or (application.owner_id != actor.id and not actor.is_admin):
            raise NotFound(f"There is no application {app_id} of yours.")
        return application
