"""DIDs (external numbers routed to extensions) and SIP trunks (``/client/{id}/did/``,
``/client/{id}/trunk/``).

A DID number is unique across the whole PBX: an incoming call on a trunk is routed by it.
A trunk's password has to be presented to the provider, so it is stored as given; it is never
returned by the API.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callgate.api.schemas import Page
from callgate.common.db import Database
from callgate.common.errors import Conflict, InvalidInput, NotFound
from callgate.identity.repository import IdentityRepository
from callgate.identity.service import KEEP, Keep
from callgate.routing.models import Did, Trunk, TrunkTransport
from callgate.routing.repository import RoutingRepository

_NUMBER = re.compile(r"^\+?[0-9]{2,31}$")
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_NO_SPACE = re.compile(r"^[!-~]+$")
MIN_REGISTER_EXPIRES = 60
MAX_REGISTER_EXPIRES = 86400
MAX_PRIORITY = 1000


def host_problem(host: str) -> str | None:
    """Why ``host`` is not a host name or an IP address, or None when it is one."""
    if not host or len(host) > 253:
        return "must be 1 to 253 characters"
    try:
        ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
        return None
    except ValueError:
        pass
    labels = host.removesuffix(".").split(".")
    if not all(_HOST_LABEL.match(label) for label in labels):
        return "must be a host name or an IP address, without scheme, port, path or spaces"
    if labels[-1].isdigit():
        return "is neither a valid IP address nor a host name"
    return None


@dataclass(frozen=True)
class TrunkSpec:
    """Every configurable field of a trunk, as it will be stored."""

    name: str
    host: str
    port: int = 5060
    transport: str = TrunkTransport.UDP
    username: str | None = None
    password: str | None = None
    register: bool = False
    register_expires: int = 3600
    caller_id_number: str | None = None
    priority: int = 10
    enabled: bool = True

    @classmethod
    def of(cls, trunk: Trunk) -> TrunkSpec:
        return cls(**{field.name: getattr(trunk, field.name) for field in dataclasses.fields(cls)})


def _check_trunk(spec: TrunkSpec) -> None:
    def refuse(field: str, message: str) -> InvalidInput:
        return InvalidInput(f"The {field} {message}.", {field: message})

    if not spec.name.strip() or len(spec.name) > 100 or not spec.name.isprintable():
        raise refuse("name", "must be 1 to 100 printable characters")
    problem = host_problem(spec.host)
    if problem is not None:
        raise refuse("host", problem)
    if not 1 <= spec.port <= 65535:
        raise refuse("port", "must be 1 to 65535")
    if spec.transport not in set(TrunkTransport):
        raise refuse("transport", "must be udp or tcp")
    if spec.username is not None and not (
        len(spec.username) <= 100 and _NO_SPACE.match(spec.username)
    ):
        raise refuse("username", "must be 1 to 100 printable characters without spaces")
    if spec.password is not None and not (
        0 < len(spec.password) <= 200 and spec.password.isprintable()
    ):
        raise refuse("password", "must be 1 to 200 printable characters")
    if spec.register and (spec.username is None or spec.password is None):
        raise refuse("register", "needs a username and a password")
    if not MIN_REGISTER_EXPIRES <= spec.register_expires <= MAX_REGISTER_EXPIRES:
        raise refuse(
            "register_expires", f"must be {MIN_REGISTER_EXPIRES} to {MAX_REGISTER_EXPIRES}"
        )
    if spec.caller_id_number is not None and not _NUMBER.match(spec.caller_id_number):
        raise refuse("caller_id_number", "must be digits, optionally after a +")
    if not 0 <= spec.priority <= MAX_PRIORITY:
        raise refuse("priority", f"must be 0 to {MAX_PRIORITY}")


def _check_number(number: str) -> None:
    if not _NUMBER.match(number):
        raise InvalidInput(
            "The number must be 2 to 31 digits, optionally after a +, without spaces.",
            {"number": "not a phone number"},
        )


class RoutingService:
    def __init__(self, database: Database) -> None:
        self.database = database

    # -- DIDs --------------------------------------------------------------------------------------

    def list_dids(self, client_id: int, page: int, per_page: int) -> Page[Did]:
        with self.database.read() as session:
            repo = RoutingRepository(session)
            items = repo.dids_of_client(client_id, (page - 1) * per_page, per_page)
            total = repo.count_dids(client_id)
        return Page(items, total, page, per_page)

    def get_did(self, client_id: int, did_id: int) -> Did:
        with self.database.read() as session:
            did = RoutingRepository(session).did(client_id, did_id)
        if did is None:
            raise NotFound(f"Client {client_id} has no DID {did_id}.")
        return did

    @staticmethod
    def _check_extension(session: Session, client_id: int, extension_id: int) -> None:
        if IdentityRepository(session).extension_of_client(client_id, extension_id) is None:
            raise InvalidInput(
                f"Client {client_id} has no extension {extension_id}.",
                {"extension_id": "not an extension of this client"},
            )

    def create_did(self, client_id: int, number: str, extension_id: int | None) -> Did:
        _check_number(number)
        try:
            with self.database.write() as session:
                repo = RoutingRepository(session)
                if repo.did_by_number(number) is not None:
                    raise Conflict(f"The number {number} is already in use.")
                if extension_id is not None:
                    self._check_extension(session, client_id, extension_id)
                did = Did(client_id=client_id, number=number, extension_id=extension_id)
                repo.add(did)
                return did
        except IntegrityError:
            # Two clients racing for one number: the unique index decides.
            raise Conflict(f"The number {number} is already in use.") from None

    def update_did(
        self,
        client_id: int,
        did_id: int,
        *,
        number: str | Keep = KEEP,
        extension_id: int | Keep | None = KEEP,
    ) -> Did:
        """Change the number, or the extension it routes to (None: not routed)."""
        if not isinstance(number, Keep):
            _check_number(number)
        try:
            with self.database.write() as session:
                repo = RoutingRepository(session)
                did = repo.did(client_id, did_id)
                if did is None:
                    raise NotFound(f"Client {client_id} has no DID {did_id}.")
                if not isinstance(number, Keep) and number != did.number:
                    if repo.did_by_number(number) is not None:
                        raise Conflict(f"The number {number} is already in use.")
                    did.number = number
                if not isinstance(extension_id, Keep):
                    if extension_id is not None:
                        self._check_extension(session, client_id, extension_id)
                    did.extension_id = extension_id
                session.flush()
                return did
        except IntegrityError:
            raise Conflict("The number is already in use.") from None

    def delete_did(self, client_id: int, did_id: int) -> None:
        with self.database.write() as session:
            repo = RoutingRepository(session)
            did = repo.did(client_id, did_id)
            if did is None:
                raise NotFound(f"Client {client_id} has no DID {did_id}.")
            repo.delete(did)

    # -- trunks ------------------------------------------------------------------------------------

    def list_trunks(self, client_id: int, page: int, per_page: int) -> Page[Trunk]:
        """The client's trunks in the order calls try them (priority, then age)."""
        with self.database.read() as session:
            repo = RoutingRepository(session)
            items = repo.trunks_of_client(client_id, (page - 1) * per_page, per_page)
            total = repo.count_trunks(client_id)
        return Page(items, total, page, per_page)

    def get_trunk(self, client_id: int, trunk_id: int) -> Trunk:
        with self.database.read() as session:
            trunk = RoutingRepository(session).trunk(client_id, trunk_id)
        if trunk is None:
            raise NotFound(f"Client {client_id} has no trunk {trunk_id}.")
        return trunk

    def create_trunk(self, client_id: int, spec: TrunkSpec) -> Trunk:
        _check_trunk(spec)
        with self.database.write() as session:
            repo = RoutingRepository(session)
            if repo.trunk_by_name(client_id, spec.name) is not None:
                raise Conflict(f"Client {client_id} already has a trunk named {spec.name!r}.")
            trunk = Trunk(client_id=client_id, **dataclasses.asdict(spec))
            repo.add(trunk)
            return trunk

    def update_trunk(self, client_id: int, trunk_id: int, changes: dict[str, Any]) -> Trunk:
        """Change some fields (the keys of ``changes``); the whole result is validated."""
        with self.database.write() as session:
            repo = RoutingRepository(session)
            trunk = repo.trunk(client_id, trunk_id)
            if trunk is None:
                raise NotFound(f"Client {client_id} has no trunk {trunk_id}.")
            spec = dataclasses.replace(TrunkSpec.of(trunk), **changes)
            _check_trunk(spec)
            if spec.name != trunk.name:
                same = repo.trunk_by_name(client_id, spec.name)
                if same is not None and same.id != trunk.id:
                    raise Conflict(f"Client {client_id} already has a trunk named {spec.name!r}.")
            for name, value in dataclasses.asdict(spec).items():
                setattr(trunk, name, value)
            session.flush()
            return trunk

    def delete_trunk(self, client_id: int, trunk_id: int) -> None:
        with self.database.write() as session:
            repo = RoutingRepository(session)
            trunk = repo.trunk(client_id, trunk_id)
            if trunk is None:
                raise NotFound(f"Client {client_id} has no trunk {trunk_id}.")
            repo.delete(trunk)
