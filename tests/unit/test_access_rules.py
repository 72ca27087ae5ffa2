"""Pure rules of enterprise access: client address behind proxies, LDAP filters and group mapping, API-key
permissions and validation, audit cursors."""

from __future__ import annotations

import ipaddress

import pytest
from pydantic import ValidationError

from backend.apikeys.schemas import ApiKeyCreate, normalise_origin
from backend.apikeys.service import KEY_PREFIX, grants, hash_key, new_key, permission_for_method, role_for_permissions
from backend.audit.service import decode_cursor, encode_cursor
from backend.auth.client_address import resolve_client_ip
from backend.auth.ldap import fill_filter, map_groups_to_access, validate_group_roles
from backend.errors import BadRequest

PROXIES = [ipaddress.ip_network("10.0.0.0/24"), ipaddress.ip_network("127.0.0.1/32")]


class TestClientAddress:
    def test_peer_is_used_when_no_proxy_is_trusted(self):
        assert resolve_client_ip("203.0.113.9", ["198.51.100.1"], []) == "203.0.113.9"

    def test_forwarded_for_from_an_untrusted_peer_is_ignored(self):
        assert resolve_client_ip("203.0.113.9", ["198.51.100.1"], PROXIES) == "203.0.113.9"

    def test_trusted_proxy_gives_the_address_it_saw(self):
        assert resolve_client_ip("10.0.0.5", ["198.51.100.1"], PROXIES) == "198.51.100.1"

    def test_client_written_entries_left_of_the_real_address_are_ignored(self):
        # The client sent "X-Forwarded-For: 1.2.3.4"; nginx appended the address it really saw.
        assert resolve_client_ip("10.0.0.5", ["1.2.3.4, 198.51.100.1"], PROXIES) == "198.51.100.1"

    def test_chains_of_trusted_proxies_are_skipped_from_the_right(self):
        assert resolve_client_ip("127.0.0.1", ["198.51.100.1, 10.0.0.7"], PROXIES) == "198.51.100.1"

    def test_garbage_hop_stops_the_walk_at_the_nearest_trusted_proxy(self):
        assert resolve_client_ip("10.0.0.5", ["198.51.100.1, not-an-ip"], PROXIES) == "10.0.0.5"

    def test_trusted_peer_without_header_is_itself_the_client(self):
        assert resolve_client_ip("10.0.0.5", [], PROXIES) == "10.0.0.5"


class TestLdapRules:
    MAPPING = validate_group_roles(
        {
            "cn=PRS-Admins,ou=groups,dc=example,dc=com": "admin",
            "technicians": "technician",
            "cn=auditors,ou=groups,dc=example,dc=com": "auditor",
        }
    )

    def test_highest_mapped_role_wins_and_dn_matching_ignores_case_and_spaces(self):
        access = map_groups_to_access(
            ["cn=technicians,ou=x,dc=y", "CN=prs-admins, OU=groups, DC=example, DC=com"], self.MAPPING
        )
        assert access.role == "admin"

    def test_an_auditor_group_gives_the_auditor_role_rather_than_the_default(self):
        access = map_groups_to_access(["cn=auditors,ou=groups,dc=example,dc=com"], self.MAPPING, "reporter")
        assert access.role == "auditor"

    def test_an_auditor_group_outranks_the_reporter_group(self):
        access = map_groups_to_access(
            ["cn=auditors,ou=groups,dc=example,dc=com", "cn=reporters,dc=y"], self.MAPPING | {"reporters": "reporter"}
        )
        assert access.role == "auditor"

    def test_a_working_role_wins_over_the_auditor_group(self):
        access = map_groups_to_access(
            ["cn=auditors,ou=groups,dc=example,dc=com", "cn=technicians,dc=y"], self.MAPPING, "reporter"
        )
        assert access.role == "technician"

    def test_unmapped_groups_give_no_role_without_a_default(self):
        assert map_groups_to_access(["cn=finance,dc=example,dc=com"], self.MAPPING).role is None

    def test_unknown_role_in_the_mapping_is_refused_at_startup(self):
        with pytest.raises(ValueError, match="superuser"):
            validate_group_roles({"cn=x": "superuser"})

    @pytest.mark.parametrize(
        "value, expected",
        [
            ("*)(uid=*))(|(uid=*", r"(uid=\2a\29\28uid=\2a\29\29\28|\28uid=\2a)"),
            ("alice", "(uid=alice)"),
            ("a\\b", r"(uid=a\5cb)"),
            ("\x00", r"(uid=\00)"),
        ],
    )
    def test_filter_values_are_escaped(self, value, expected):
        assert fill_filter("(uid={username})", username=value) == expected


class TestApiKeyRules:
    def test_new_keys_have_the_prefix_and_256_bits_and_hash_to_hex_sha256(self):
        key = new_key()
        assert key.startswith(KEY_PREFIX) and len(key) == len(KEY_PREFIX) + 43
        assert len(hash_key(key)) == 64 and hash_key(key) != hash_key(new_key())

    @pytest.mark.parametrize(
        "permissions, needed, allowed",
        [
            ({"read"}, "read", True),
            ({"read"}, "write", False),
            ({"write"}, "read", False),
            ({"escalate"}, "write", True),
            ({"escalate"}, "read", False),
            ({"admin"}, "write", True),
            ({"admin"}, "escalate", True),
            ({"write"}, "escalate", False),
        ],
    )
    def test_permission_grants(self, permissions, needed, allowed):
        assert grants(frozenset(permissions), needed) is allowed

    def test_role_on_the_internal_api_follows_the_highest_permission(self):
        assert role_for_permissions(frozenset({"read"})) == "reporter"
        assert role_for_permissions(frozenset({"read", "write"})) == "technician"
        assert role_for_permissions(frozenset({"escalate"})) == "supervisor"
        assert role_for_permissions(frozenset({"admin"})) == "admin"

    def test_safe_methods_need_read_and_the_rest_write(self):
        assert [permission_for_method(m) for m in ("GET", "head", "POST", "PATCH", "DELETE")] == [
            "read",
            "read",
            "write",
            "write",
            "write",
        ]

    def test_origins_are_normalised_and_paths_refused(self):
        assert normalise_origin("HTTPS://Mes.Example.com:8443/") == "https://mes.example.com:8443"
        for bad in ("mes.example.com", "ftp://x", "https://x/path", "https://user@x", "null"):
            with pytest.raises(ValueError):
                normalise_origin(bad)

    def test_create_body_validates_networks_origins_and_timezone(self):
        body = ApiKeyCreate(
            name=" MES ",
            owner_email="a@b.c",
            permissions=["write", "read", "read"],
            allowed_networks=["10.1.2.3", "192.168.0.0/16"],
            allowed_origins=["https://A.example"],
        )
        assert body.name == "MES" and body.permissions == ["read", "write"]
        assert body.allowed_networks == ["10.1.2.3/32", "192.168.0.0/16"]
        assert body.allowed_origins == ["https://a.example"]
        for bad in (
            {"allowed_networks": ["10.0.0.0/33"]},
            {"allowed_origins": ["javascript:alert(1)"]},
            {"expires_at": "2030-01-01T00:00:00"},
            {"permissions": ["root"]},
            {"permissions": []},
            {"owner_email": "not-an-email"},
        ):
            with pytest.raises(ValidationError):
                ApiKeyCreate(**({"name": "x", "owner_email": "a@b.c", "permissions": ["read"]} | bad))


class TestAuditCursor:
    def test_cursor_round_trips(self):
        assert decode_cursor(encode_cursor(42)) == 42

    @pytest.mark.parametrize("cursor", ["", "!!!", "eyJiZWZvcmUiOiAiMSJ9", "eyJiZWZvcmUiOiAtMX0", "W10"])
    def test_bad_cursor_is_400_naming_the_field(self, cursor):
        with pytest.raises(BadRequest) as caught:
            decode_cursor(cursor)
        assert caught.value.field == "cursor"
