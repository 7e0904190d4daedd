"""``callgate demo``: an idempotent demo data set for a first look (development mode only).

It creates what is missing of: the admin ``admin``, the client ``Demo`` with prefix ``00012``, its
phone extensions 101 and 102 with SIP passwords, and the client user ``demo``. A password is
printed only when it is set (it is stored as an argon2 hash, or as digest HA1 values for SIP, and
cannot be shown again); fixed ones can be given with ``CALLGATE_DEMO_ADMIN_PASSWORD`` /
``CALLGATE_DEMO_USER_PASSWORD`` / ``CALLGATE_DEMO_SIP_PASSWORD``. With each new SIP password
comes a ready-to-use baresip ``accounts`` line for the PBX at ``CALLGATE_SIP_HOST:SIP_PORT``.
"""

from __future__ import annotations

import argparse
import secrets
from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict

from callgate.cli.context import Context, Outcome, served_url
from callgate.cli.identity import client_view, extension_view, user_view
from callgate.common.errors import PermissionRefused
from callgate.identity.models import Client, Extension, ExtensionType, User
from callgate.identity.repository import IdentityRepository
from callgate.services import Services

ADMIN_LOGIN = "admin"
USER_LOGIN = "demo"
CLIENT_NAME = "Demo"
CLIENT_PREFIX = "00012"
EXTENSIONS = ("101", "102")


class DemoSettings(BaseSettings):
    """Optional fixed demo passwords, e.g. for scripted walk-throughs."""

    model_config = SettingsConfigDict(env_prefix="CALLGATE_DEMO_", extra="ignore")

    admin_password: str | None = None
    user_password: str | None = None
    sip_password: str | None = None  # both demo phones get it


def _new_password() -> str:
    return secrets.token_urlsafe(12)


def baresip_account(user: str, password: str, host: str, port: int) -> str:
    """A line of baresip's ``accounts`` file: register to the PBX, answer calls at once."""
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
    if ":" in shown_host:
        shown_host = f"[{shown_host}]"
    return (
        f"<sip:{user}@{shown_host}:{port}>;auth_pass={password};answermode=auto;regint=300;"
        "audio_codecs=pcmu"
    )


def _sip_account(
    services: Services, extension: Extension, client: Client, given: str | None
) -> dict[str, Any]:
    """Give a demo phone a SIP password unless it has one (the old one is never shown)."""
    user = extension_view(extension, client)["sip_user"]
    password: str | None = None
    if not services.phones.get_phone(extension.id).password_set:
        password = given or _new_password()
        services.phones.update_phone(extension.id, password=password)
    settings = services.settings
    return {
        "user": user,
        "extension": extension.name,
        "password": password,
        "created": password is not None,
        "baresip_account": (
            baresip_account(user, password, settings.sip_host, settings.sip_port)
            if password is not None
            else None
        ),
    }


def _existing(services: Services) -> tuple[User | None, Client | None, User | None]:
    with services.database.read() as session:
        repo = IdentityRepository(session)
        return (
            repo.user_by_login(ADMIN_LOGIN),
            repo.client_by_prefix(CLIENT_PREFIX),
            repo.user_by_login(USER_LOGIN),
        )


def _extension(services: Services, client: Client, name: str) -> tuple[Extension, bool]:
    with services.database.read() as session:
        found = IdentityRepository(session).extension_by_name(client.id, name)
    if found is not None:
        return found, False
    created = services.identity.create_extension(
        client.id, name, ExtensionType.PHONE, label=f"Demo phone {name}"
    )
    return created, True


def demo(args: argparse.Namespace, ctx: Context) -> Outcome:
    if ctx.settings.mode != "development":
        raise PermissionRefused(
            "callgate demo creates users with printed passwords; it runs only in development "
            "mode (CALLGATE_MODE=development)."
        )
    given = DemoSettings()
    services = ctx.services
    admin, client, user = _existing(services)

    admin_password: str | None = None
    if admin is None:
        admin_password = given.admin_password or _new_password()
        admin = services.identity.create_user(ADMIN_LOGIN, admin_password, admin=True)
        admin_created = True
    else:
        admin_created = False

    client_created = client is None
    if client is None:
        client = services.identity.create_client(CLIENT_NAME, CLIENT_PREFIX)
    extensions = [_extension(services, client, name) for name in EXTENSIONS]

    user_password: str | None = None
    if user is None:
        user_password = given.user_password or _new_password()
        user = services.identity.create_user(USER_LOGIN, user_password, client_id=client.id)
        user_created = True
    else:
        user_created = False

    settings = ctx.settings
    login_url = f"{served_url(settings, settings.http_host, settings.http_port)}/login"
    data: dict[str, Any] = {
        "admin": {**user_view(admin), "password": admin_password, "created": admin_created},
        "client": {**client_view(client), "created": client_created},
        "extensions": [
            {**extension_view(ext, client), "created": created} for ext, created in extensions
        ],
        "user": {**user_view(user), "password": user_password, "created": user_created},
        "sip_accounts": [
            _sip_account(services, ext, client, given.sip_password) for ext, _ in extensions
        ],
        "sip": f"udp+tcp {settings.sip_host}:{settings.sip_port}",
        "login_url": login_url,
    }
    return Outcome(data, _lines(data))


def _password_text(password: str | None) -> str:
    if password is None:
        return "(unchanged; it was printed when it was set)"
    return password


def _lines(data: dict[str, Any]) -> list[str]:
    admin, client, user = data["admin"], data["client"], data["user"]
    lines = [
        "Callgate demo data" + ("" if admin["created"] else " (already present)") + ":",
        f"  admin login:     {admin['login']}",
        f"  admin password:  {_password_text(admin['password'])}",
        f'  client:          {client["id"]} "{client["name"]}" prefix {client["prefix"]}',
    ]
    for ext in data["extensions"]:
        lines.append(f"  extension:       {ext['id']} ({ext['name']}, {ext['type']})")
    lines += [
        f"  client user:     {user['login']}",
        f"  user password:   {_password_text(user['password'])}",
    ]
    for account in data["sip_accounts"]:
        lines.append(f"  SIP account:     {account['user']}")
        lines.append(f"  SIP password:    {_password_text(account['password'])}")
    accounts = [a["baresip_account"] for a in data["sip_accounts"] if a["baresip_account"]]
    if accounts:
        lines.append(f"baresip accounts lines (SIP at {data['sip']}), one per phone's folder:")
        lines += [f"  {line}" for line in accounts]
    lines.append(f"Log in at {data['login_url']}")
    return lines


def add_parsers(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "demo", parents=[common], help="create the demo data set if missing (idempotent)"
    )
    parser.set_defaults(handler=demo)
