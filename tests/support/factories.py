"""Test data: a small PBX with the users every access test needs."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from callgate.apps.service import RegisteredApp
from callgate.identity.models import Client, Extension, User
from callgate.services import Services

PASSWORD = "correct horse battery"
_counter = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}{next(_counter)}"


@dataclass
class World:
    """Two clients; client A has extensions 101 and 102 and users of every kind."""

    client: Client
    other_client: Client
    ext101: Extension
    ext102: Extension
    other_ext: Extension
    admin: User
    manager: User  # client level, full access
    reader: User  # client level, read_only
    ext_user: User  # owner of extension 101
    other_manager: User  # client level of the other client


def make_world(services: Services) -> World:
    identity = services.identity
    client = identity.create_client(unique("Client "), unique("10"))
    other = identity.create_client(unique("Other "), unique("20"))
    ext101 = identity.create_extension(client.id, "101")
    ext102 = identity.create_extension(client.id, "102")
    other_ext = identity.create_extension(other.id, "101")
    return World(
        client=client,
        other_client=other,
        ext101=ext101,
        ext102=ext102,
        other_ext=other_ext,
        admin=identity.create_user(unique("admin"), PASSWORD, admin=True),
        manager=identity.create_user(unique("manager"), PASSWORD, client_id=client.id),
        reader=identity.create_user(
            unique("reader"), PASSWORD, client_id=client.id, read_only=True
        ),
        ext_user=identity.create_user(unique("ext"), PASSWORD, extension_id=ext101.id),
        other_manager=identity.create_user(unique("othermgr"), PASSWORD, client_id=other.id),
    )


def register_app(
    services: Services,
    owner: User,
    *,
    type_: str = "trusted",
    level: str = "call_api",
    redirect_uris: str = "",
    actor: User | None = None,
) -> RegisteredApp:
    """Register an app for ``owner``; ``actor`` (default: an admin-capable owner) decides."""
    return services.apps.register(
        actor or owner,
        name=unique("App "),
        redirect_uris=redirect_uris,
        type_=type_,
        access_level=level,
        owner=owner,
    )
