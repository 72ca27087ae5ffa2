"""Sign-in against LDAP / Active Directory (ldap3): find the person with the service account, bind as them
to check the password, read their groups, and map the groups to a PR-System role through configuration."""

from __future__ import annotations

import asyncio
import logging
import math
import ssl
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from ldap3 import NONE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import parse_dn

from backend.config import Settings
from backend.context import ROLE_ORDER
from backend.errors import ServiceUnavailable

log = logging.getLogger(__name__)

AUDITOR = "auditor"
USERNAME_MAX = 256
_INVALID_CREDENTIALS = 49


class DirectoryUnavailable(ServiceUnavailable):
    """The directory could not be reached or refused the service account: 503, local accounts still work."""


@dataclass(frozen=True)
class DirectoryPerson:
    """A person the directory vouched for."""

    dn: str
    username: str
    display_name: str
    email: str | None
    groups: tuple[str, ...]


@dataclass(frozen=True)
class DirectoryAccess:
    """What a person's groups grant: a role (None: nothing)."""

    role: str | None


def _normalise_dn(dn: str) -> str:
    try:
        return ",".join(f"{attr.lower()}={value.lower()}" for attr, value, _ in parse_dn(dn, escape=False, strip=True))
    except LDAPException:
        return dn.strip().lower()


def _first_rdn_value(dn: str) -> str:
    try:
        return parse_dn(dn, escape=False, strip=True)[0][1].lower()
    except (LDAPException, IndexError):
        return ""


def validate_group_roles(mapping: Mapping[str, str]) -> dict[str, str]:
    """Check the group→role map (values: the four roles or 'auditor'); keys normalised for matching."""
    allowed = set(ROLE_ORDER) | {AUDITOR}
    clean: dict[str, str] = {}
    for group, role in mapping.items():
        if role not in allowed:
            raise ValueError(f"PRS_LDAP_GROUP_ROLES maps '{group}' to '{role}'; use one of {sorted(allowed)}")
        key = _normalise_dn(group) if "=" in group else group.strip().lower()
        clean[key] = role
    return clean


def map_groups_to_access(groups: Iterable[str], mapping: Mapping[str, str], default_role: str = "") -> DirectoryAccess:
    """The highest ordered role any group maps to (by DN or by CN), except that an auditor group outranks the
    reporter role (technician and above outrank it); else the default role."""
    best: str | None = None
    auditor = False
    for group in groups:
        for key in (_normalise_dn(group), _first_rdn_value(group)):
            granted = mapping.get(key)
            if granted == AUDITOR:
                auditor = True
            elif granted is not None and (best is None or ROLE_ORDER[granted] > ROLE_ORDER[best]):
                best = granted
    if auditor and (best is None or best == "reporter"):
        # An auditor group is a deliberate grant; it outranks the baseline reporter group, not the working roles.
        return DirectoryAccess(role=AUDITOR)
    return DirectoryAccess(role=best or (default_role or None))


def fill_filter(template: str, **values: str) -> str:
    """Put values into a filter template, each escaped (RFC 4515) so it can only ever be a literal value."""
    result = template
    for name, value in values.items():
        result = result.replace("{" + name + "}", escape_filter_chars(value))
    return result


def _first(attributes: Mapping[str, Any], name: str) -> str | None:
    value = attributes.get(name)
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    return str(value) if value not in (None, "") else None


def _all(attributes: Mapping[str, Any], name: str) -> list[str]:
    value = attributes.get(name) or []
    return [str(v) for v in (value if isinstance(value, (list, tuple)) else [value])]


class DirectoryLogin:
    """Authenticates people against the configured directory; blocking ldap3 calls run in a thread."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.group_roles = validate_group_roles(settings.ldap_group_roles)
        if self.enabled and not settings.ldap_user_base_dn:
            raise ValueError("PRS_LDAP_USER_BASE_DN is required when PRS_LDAP_URL is set")
        if self.enabled and "{username}" not in settings.ldap_user_filter:
            raise ValueError("PRS_LDAP_USER_FILTER must contain {username}")

    @property
    def enabled(self) -> bool:
        """True when a directory is configured."""
        return bool(self.settings.ldap_url)

    def access_for(self, person: DirectoryPerson) -> DirectoryAccess:
        """The role and capabilities a person's groups grant."""
        return map_groups_to_access(person.groups, self.group_roles, self.settings.ldap_default_role)

    async def authenticate(self, username: str, password: str) -> DirectoryPerson | None:
        """The person when the directory accepts the password; None for a wrong password or unknown user."""
        if not username or not password or len(username) > USERNAME_MAX or any(ord(c) < 32 for c in username):
            return None  # an empty password would be an unauthenticated bind, which "succeeds"
        return await asyncio.to_thread(self._authenticate_blocking, username, password)

    def _server(self) -> Server:
        s = self.settings
        tls = Tls(
            validate=ssl.CERT_REQUIRED if s.ldap_tls_verify else ssl.CERT_NONE, ca_certs_file=s.ldap_ca_file or None
        )
        return Server(s.ldap_url, get_info=NONE, connect_timeout=s.ldap_timeout_s, tls=tls)

    def _open(self, server: Server, user: str, password: str) -> tuple[Connection, bool]:
        """Open (and StartTLS) a connection and bind; returns it and whether the bind succeeded."""
        conn = Connection(
            server,
            user=user,
            password=password,
            read_only=True,
            auto_referrals=False,
            # ldap3 packs the receive timeout into a socket option: whole seconds only.
            receive_timeout=max(1, math.ceil(self.settings.ldap_timeout_s)),
            raise_exceptions=False,
        )
        conn.open()
        if self.settings.ldap_start_tls and not conn.start_tls():
            raise DirectoryUnavailable(f"the directory at {self.settings.ldap_url} refused StartTLS")
        return conn, conn.bind()

    def _authenticate_blocking(self, username: str, password: str) -> DirectoryPerson | None:
        s = self.settings
        try:
            server = self._server()
            service, bound = self._open(server, s.ldap_bind_dn, s.ldap_bind_password)
            try:
                if not bound:
                    raise DirectoryUnavailable(
                        f"the directory at {s.ldap_url} refused the service account "
                        f"({service.result.get('description', 'bind failed')})"
                    )
                entry = self._find_user(service, username)
                if entry is None:
                    return None
                user_dn, attributes = entry["dn"], entry["attributes"]
                person_conn, person_bound = self._open(server, user_dn, password)
                person_conn.unbind()
                if not person_bound:
                    if person_conn.result.get("result") != _INVALID_CREDENTIALS:
                        log.warning(
                            "directory refused a user bind",
                            extra={"ldap_result": person_conn.result.get("description")},
                        )
                    return None
                groups = self._groups(service, user_dn, username, attributes)
            finally:
                service.unbind()
        except DirectoryUnavailable:
            raise
        except LDAPException as exc:
            raise DirectoryUnavailable(
                f"the directory at {s.ldap_url} is unreachable ({type(exc).__name__}: {exc}); "
                "local accounts can still sign in"
            ) from None
        return DirectoryPerson(
            dn=user_dn,
            username=username,
            display_name=_first(attributes, s.ldap_display_name_attribute) or _first(attributes, "cn") or username,
            email=_first(attributes, s.ldap_email_attribute),
            groups=tuple(groups),
        )

    def _find_user(self, conn: Connection, username: str) -> dict[str, Any] | None:
        s = self.settings
        wanted = ["cn", s.ldap_display_name_attribute, s.ldap_email_attribute]
        if s.ldap_group_mode == "memberof":
            wanted.append("memberOf")
        conn.search(
            s.ldap_user_base_dn,
            fill_filter(s.ldap_user_filter, username=username),
            search_scope=SUBTREE,
            attributes=wanted,
            size_limit=2,
        )
        entries = [r for r in (conn.response or []) if r.get("type") == "searchResEntry"]
        if len(entries) > 1:
            log.warning("directory user filter matched several entries; refusing the login")
            return None
        return entries[0] if entries else None

    def _groups(self, conn: Connection, user_dn: str, username: str, attributes: Mapping[str, Any]) -> list[str]:
        s = self.settings
        if s.ldap_group_mode == "memberof":
            return _all(attributes, "memberOf")
        conn.search(
            s.ldap_group_base_dn or s.ldap_user_base_dn,
            fill_filter(s.ldap_group_filter, user_dn=user_dn, username=username),
            search_scope=SUBTREE,
            attributes=["cn"],
            size_limit=1000,
        )
        return [r["dn"] for r in (conn.response or []) if r.get("type") == "searchResEntry"]
