"""``callgate app ...``: registering and listing PBX applications, changing type and level.

``app create`` registers the app as its owner, so the owner's rights decide (a non-admin owner
cannot ask for ``password_credentials`` or ``all``). ``set-level`` and ``set-type`` are operator
operations: without ``--as`` the CLI acts as the system administrator; with ``--as LOGIN`` it acts
as that user and the admin-only rules apply to them.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Any

from callgate.apps.models import ACCESS_LEVEL_LABELS, AccessLevel, Application, AppType
from callgate.cli.context import Context, Outcome, operator
from callgate.common.errors import UserBlocked
from callgate.identity.models import Status, User
from callgate.identity.repository import IdentityRepository


def app_view(application: Application, owner_login: str | None = None) -> dict[str, Any]:
    return {
        "id": application.id,
        "app_id": application.app_id,
        "name": application.name,
        "type": application.type,
        "access_level": application.access_level,
        "redirect_uris": application.redirect_uri_list,
        "require_pkce": application.require_pkce,
        "status": application.status,
        "owner_id": application.owner_id,
        "owner": owner_login,
        "created_at": application.created_at.isoformat() if application.created_at else None,
    }


def _level_label(level: str) -> str:
    return ACCESS_LEVEL_LABELS.get(AccessLevel(level), level)


def _actor(ctx: Context, login: str | None) -> User:
    if login is None:
        return operator()
    user = ctx.user_by_login(login)
    if user.status != Status.ACTIVE:
        raise UserBlocked(f"The user {login} is blocked and may not act.")
    return user


def _owner_logins(ctx: Context, owner_ids: Iterable[int]) -> dict[int, str]:
    logins: dict[int, str] = {}
    with ctx.services.database.read() as session:
        repo = IdentityRepository(session)
        for owner_id in set(owner_ids):
            user = repo.user(owner_id)
            if user is not None:
                logins[owner_id] = user.login
    return logins


def app_create(args: argparse.Namespace, ctx: Context) -> Outcome:
    owner = ctx.user_by_login(args.owner)
    if owner.status != Status.ACTIVE:
        raise UserBlocked(f"The user {args.owner} is blocked; it cannot own a new application.")
    registered = ctx.services.apps.register(
        owner,
        name=args.name,
        redirect_uris=" ".join(args.redirect_uris or []),
        type_=args.type,
        access_level=args.level,
    )
    application = registered.application
    view = app_view(application, owner.login)
    view["app_secret"] = registered.app_secret
    return Outcome(
        view,
        [
            f'Registered application {application.id} "{application.name}" '
            f"({application.type}, {_level_label(application.access_level)}) "
            f"owned by {owner.login}.",
            f"app_id:     {application.app_id}",
            f"app_secret: {registered.app_secret}",
            "The secret is shown only now; Callgate keeps only its hash.",
        ],
    )


def app_list(args: argparse.Namespace, ctx: Context) -> Outcome:
    apps = ctx.services.apps
    if args.owner is not None:
        applications = apps.list_owned(ctx.user_by_login(args.owner))
    else:
        applications = apps.search(operator())
    logins = _owner_logins(ctx, (a.owner_id for a in applications))
    views = [app_view(a, logins.get(a.owner_id)) for a in applications]
    lines = [
        f"{a.app_id}  {a.type:<20}  {_level_label(a.access_level):<8}  {a.status:<9}  "
        f"{logins.get(a.owner_id, '?'):<16}  {a.name}"
        for a in applications
    ]
    if not lines:
        lines = ["No applications."]
    else:
        header = f"{'APP_ID':<32}  {'TYPE':<20}  {'LEVEL':<8}  {'STATUS':<9}  {'OWNER':<16}  NAME"
        lines.insert(0, header)
    return Outcome({"applications": views, "count": len(views)}, lines)


def app_set_level(args: argparse.Namespace, ctx: Context) -> Outcome:
    actor = _actor(ctx, args.as_login)
    application = ctx.services.apps.set_access_level(actor, args.app_id, args.level)
    return Outcome(
        app_view(application),
        [
            f"Application {application.app_id} now has access level "
            f"{_level_label(application.access_level)}; it applies from the next request."
        ],
    )


def app_set_type(args: argparse.Namespace, ctx: Context) -> Outcome:
    actor = _actor(ctx, args.as_login)
    application = ctx.services.apps.set_type(actor, args.app_id, args.type)
    return Outcome(
        app_view(application),
        [
            f"Application {application.app_id} now has type {application.type}; "
            "tokens issued under another type are revoked."
        ],
    )


def add_parsers(commands: Any, common: argparse.ArgumentParser) -> None:
    """Register ``app`` under the top-level subparsers."""
    types = [t.value for t in AppType]
    levels = [level.value for level in AccessLevel]
    app = commands.add_parser("app", help="manage PBX applications (OAuth2 clients)")
    app_commands = app.add_subparsers(dest="command_name", metavar="COMMAND", required=True)

    create = app_commands.add_parser(
        "create", parents=[common], help="register an application as its owner"
    )
    create.add_argument("--owner", required=True, metavar="LOGIN", help="the owning user")
    create.add_argument("--name", required=True)
    create.add_argument("--type", required=True, choices=types)
    create.add_argument("--level", choices=levels, default=AccessLevel.CALL_API.value)
    create.add_argument(
        "--redirect-uri",
        dest="redirect_uris",
        action="extend",
        nargs="+",
        metavar="URI",
        help="an absolute redirect URI (repeatable)",
    )
    create.set_defaults(handler=app_create)

    listing = app_commands.add_parser("list", parents=[common], help="list applications")
    listing.add_argument("--owner", metavar="LOGIN", help="only this user's applications")
    listing.set_defaults(handler=app_list)

    as_help = "act as this user (the admin-only rules then apply); default: the operator"
    level = app_commands.add_parser(
        "set-level", parents=[common], help="change an application's access level"
    )
    level.add_argument("app_id", metavar="APP_ID")
    level.add_argument("level", metavar="LEVEL", choices=levels, help=" | ".join(levels))
    level.add_argument("--as", dest="as_login", metavar="LOGIN", help=as_help)
    level.set_defaults(handler=app_set_level)

    type_ = app_commands.add_parser(
        "set-type", parents=[common], help="change an application's type"
    )
    type_.add_argument("app_id", metavar="APP_ID")
    type_.add_argument("type", metavar="TYPE", choices=types, help=" | ".join(types))
    type_.add_argument("--as", dest="as_login", metavar="LOGIN", help=as_help)
    type_.set_defaults(handler=app_set_type)
