"""``callgate client|extension|user ...``: create clients, extensions and users; block users."""

from __future__ import annotations

import argparse
from typing import Any

from callgate.cli.context import Context, Outcome
from callgate.common.errors import InvalidInput
from callgate.identity.models import Client, Extension, ExtensionType, Status, User
from callgate.identity.repository import IdentityRepository


def client_view(client: Client) -> dict[str, Any]:
    return {"id": client.id, "name": client.name, "prefix": client.prefix, "status": client.status}


def extension_view(extension: Extension, client: Client | None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": extension.id,
        "client_id": extension.client_id,
        "name": extension.name,
        "type": extension.type,
        "label": extension.label,
        "status": extension.status,
        "sip_user": None,
    }
    if extension.type == ExtensionType.PHONE and client is not None:
        view["sip_user"] = f"{client.prefix}*{extension.name}"
    return view


def user_view(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "login": user.login,
        "level": user.level,
        "admin": user.is_admin,
        "access": user.access,
        "status": user.status,
        "client_id": user.client_id,
        "extension_id": user.extension_id,
    }


def describe_user(user: User) -> str:
    where = ""
    if user.extension_id is not None:
        where = f", extension {user.extension_id}"
    elif user.client_id is not None:
        where = f", client {user.client_id}"
    return f'user {user.id} "{user.login}" ({user.level} level, {user.access} access{where})'


def read_password(ctx: Context) -> str:
    """One line from stdin; the trailing newline is not part of the password."""
    password = ctx.stdin.readline().rstrip("\r\n")
    if not password:
        raise InvalidInput(
            "No password on stdin: pipe one line, e.g. `printf '%s\\n' \"$PASSWORD\" | callgate "
            "user create ...`.",
            {"password": "empty"},
        )
    return password


def client_create(args: argparse.Namespace, ctx: Context) -> Outcome:
    client = ctx.services.identity.create_client(args.name, args.prefix)
    return Outcome(
        client_view(client),
        [f'Created client {client.id} "{client.name}" with prefix {client.prefix}.'],
    )


def extension_create(args: argparse.Namespace, ctx: Context) -> Outcome:
    services = ctx.services
    extension = services.identity.create_extension(
        args.client, args.name, args.type, args.label or ""
    )
    with services.database.read() as session:
        client = IdentityRepository(session).client(extension.client_id)
    view = extension_view(extension, client)
    line = (
        f"Created {extension.type} extension {extension.id} ({extension.name}) "
        f"in client {extension.client_id}"
    )
    if view["sip_user"]:
        line += f"; SIP user name {view['sip_user']}"
    return Outcome(view, [line + "."])


def user_create(args: argparse.Namespace, ctx: Context) -> Outcome:
    password = read_password(ctx)
    user = ctx.services.identity.create_user(
        args.login,
        password,
        admin=args.admin,
        client_id=args.client,
        extension_id=args.extension,
        read_only=args.read_only,
    )
    return Outcome(user_view(user), [f"Created {describe_user(user)}."])


def user_set_status(args: argparse.Namespace, ctx: Context) -> Outcome:
    status = Status.BLOCKED if args.command_name == "block" else Status.ACTIVE
    user = ctx.user_by_login(args.login)
    ctx.services.identity.set_user_status(user.id, status)
    user.status = status
    done = "Blocked" if status == Status.BLOCKED else "Unblocked"
    note = " Its tokens are revoked." if status == Status.BLOCKED else ""
    return Outcome(user_view(user), [f"{done} {describe_user(user)}.{note}"])


def user_set_password(args: argparse.Namespace, ctx: Context) -> Outcome:
    password = read_password(ctx)
    user = ctx.user_by_login(args.login)
    ctx.services.identity.change_password(user.id, password)
    return Outcome(
        user_view(user), [f"Changed the password of {describe_user(user)}; its tokens are revoked."]
    )


def add_parsers(commands: Any, common: argparse.ArgumentParser) -> None:
    """Register ``client``, ``extension`` and ``user`` under the top-level subparsers."""
    client = commands.add_parser("client", help="manage clients (tenants)")
    client_commands = client.add_subparsers(dest="command_name", metavar="COMMAND", required=True)
    create = client_commands.add_parser("create", parents=[common], help="create a client")
    create.add_argument("--name", required=True, help="the client's name")
    create.add_argument("--prefix", required=True, help="numeric prefix, e.g. 00012")
    create.set_defaults(handler=client_create)

    extension = commands.add_parser("extension", help="manage extensions")
    ext_commands = extension.add_subparsers(dest="command_name", metavar="COMMAND", required=True)
    create = ext_commands.add_parser("create", parents=[common], help="create an extension")
    create.add_argument("--client", type=int, required=True, metavar="ID", help="client id")
    create.add_argument("--name", required=True, help="the short number, e.g. 101")
    create.add_argument(
        "--type", choices=[t.value for t in ExtensionType], default=ExtensionType.PHONE.value
    )
    create.add_argument("--label", default="", help="display name")
    create.set_defaults(handler=extension_create)

    user = commands.add_parser("user", help="manage users")
    user_commands = user.add_subparsers(dest="command_name", metavar="COMMAND", required=True)
    create = user_commands.add_parser("create", parents=[common], help="create a user")
    create.add_argument("--login", required=True)
    create.add_argument(
        "--password-stdin",
        action="store_true",
        required=True,
        help="read the password from stdin (one line); it never appears in argv or history",
    )
    create.add_argument("--admin", action="store_true", help="a system administrator")
    create.add_argument("--client", type=int, metavar="ID", help="a manager of this client")
    create.add_argument("--extension", type=int, metavar="ID", help="the owner of this extension")
    create.add_argument("--read-only", action="store_true", help="access type read_only")
    create.set_defaults(handler=user_create)
    for name, text in (("block", "block a user (revokes its tokens)"), ("unblock", "unblock")):
        status = user_commands.add_parser(name, parents=[common], help=text)
        status.add_argument("login", metavar="LOGIN")
        status.set_defaults(handler=user_set_status)
    password = user_commands.add_parser(
        "set-password", parents=[common], help="set a new password (revokes the user's tokens)"
    )
    password.add_argument("login", metavar="LOGIN")
    password.add_argument("--password-stdin", action="store_true", required=True)
    password.set_defaults(handler=user_set_password)
