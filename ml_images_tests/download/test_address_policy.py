from __future__ import annotations

import re

import pytest

from ml_images.download.address_policy import (
    AddressPolicy,
    format_allowed_host,
    is_public_address,
    parse_allowed_host,
)
from ml_images.outcomes import Refused


@pytest.mark.parametrize(
    "ip",
    [
        "8.8.8.8",
        "1.1.1.1",
        "93.184.216.34",
        "2606:4700:4700::1111",
        "2a00:1450:4001:82a::200e",
        "::ffff:8.8.8.8",  # mapped public IPv4
        "64:ff9b::808:808",  # NAT64 of 8.8.8.8 (what DNS64 hands out on IPv6-only networks)
        "2002:0808:0808::1",  # 6to4 of 8.8.8.8
    ],
)
def test_public_addresses_are_allowed(ip: str) -> None:
    assert is_public_address(ip)


@pytest.mark.parametrize(
    "ip",
    [
        "127.0.0.1",
        "127.0.0.2",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # CGNAT
        "100.127.255.254",
        "0.0.0.0",  # noqa: S104 - an address under test, not a bind
        "0.1.2.3",
        "224.0.0.1",  # multicast (is_global=True on 3.11.7)
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "192.0.0.8",
        "192.0.2.1",
        "198.18.0.1",
        "198.51.100.7",
        "203.0.113.9",
        "192.88.99.1",  # 6to4 relay anycast (is_global=True on 3.11.7)
        "::",
        "::1",
        "fe80::1",
        "fe80::1%eth0",
        "fc00::1",
        "fd12:3456::1",
        "ff02::1",  # multicast (is_global=True on 3.11.7)
        "fec0::1",
        "100::1",
        "2001:db8::1",
        "3fff::1",
        "5f00::1",
        "2001::a9fe:a9fe",  # Teredo
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "::ffff:10.0.0.1",
        "::127.0.0.1",  # IPv4-compatible (is_global=True on 3.11.7)
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254 (CVE-2024-4032: is_global=True on 3.11.7)
        "64:ff9b::7f00:1",
        "64:ff9b:1::a9fe:a9fe",  # local-use NAT64
        "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254 (CVE-2024-4032: is_global=True on 3.11.7)
        "2002:7f00:1::1",
        "[::1]",
        "not-an-ip",
        "",
    ],
)
def test_non_public_addresses_are_refused(ip: str) -> None:
    assert not is_public_address(ip)


def test_vet_returns_every_address_of_a_public_host() -> None:
    policy = AddressPolicy(resolver=lambda host, port: ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"])
    assert policy.vet("example.test", 443) == ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]


def test_one_private_answer_taints_the_whole_lookup() -> None:
    policy = AddressPolicy(resolver=lambda host, port: ["93.184.216.34", "10.0.0.1"])
    with pytest.raises(Refused) as info:
        policy.vet("rebind.test", 80)
    assert info.value.reason == "blocked_address"
    assert "10.0.0.1" in info.value.detail


def test_allow_listed_host_may_be_private_and_use_any_port() -> None:
    policy = AddressPolicy(["127.0.0.1", "Localhost"], resolver=lambda host, port: ["127.0.0.1", "::1"])
    assert policy.vet("127.0.0.1", 8123) == ["127.0.0.1"]
    assert policy.vet("LOCALHOST.", 8123) == ["127.0.0.1", "::1"]


def test_allow_list_is_by_host_not_by_address() -> None:
    policy = AddressPolicy(["127.0.0.1"], resolver=lambda host, port: ["127.0.0.1"])
    for host in ("127.0.0.2", "localhost", "2130706433"):
        with pytest.raises(Refused) as info:
            policy.vet(host, 80)
        assert info.value.reason == "blocked_address"


def test_public_host_only_on_standard_ports() -> None:
    policy = AddressPolicy(resolver=lambda host, port: ["93.184.216.34"])
    assert policy.vet("cdn.test", 80) == ["93.184.216.34"]
    with pytest.raises(Refused) as info:
        policy.vet("cdn.test", 6379)
    assert info.value.reason == "blocked_port"


def test_private_address_wins_over_port_as_the_reason() -> None:
    with pytest.raises(Refused) as info:
        AddressPolicy().vet("10.0.0.1", 8080)
    assert info.value.reason == "blocked_address"


def test_dns_failures() -> None:
    def failing(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    with pytest.raises(Refused) as info:
        AddressPolicy(resolver=failing).vet("nowhere.test", 80)
    assert info.value.reason == "dns_failure"
    with pytest.raises(Refused) as info:
        AddressPolicy(resolver=lambda host, port: []).vet("empty.test", 80)
    assert info.value.reason == "dns_failure"


def test_system_resolver_is_used_by_default_for_names() -> None:
    # localhost resolves from /etc/hosts, no network involved; it is loopback, hence refused unless listed.
    with pytest.raises(Refused) as info:
        AddressPolicy().vet("localhost", 80)
    assert info.value.reason == "blocked_address"
    assert "127.0.0.1" in AddressPolicy(["localhost"]).vet("localhost", 80)


def test_a_host_port_entry_exempts_that_port_only() -> None:
    policy = AddressPolicy(["127.0.0.1:8080"])
    assert policy.vet("127.0.0.1", 8080) == ["127.0.0.1"]
    for port in (80, 5432, 6379, 8081):
        with pytest.raises(Refused) as info:
            policy.vet("127.0.0.1", port)
        assert info.value.reason == "blocked_address", port


def test_a_bare_host_keeps_exempting_every_port() -> None:
    policy = AddressPolicy(["127.0.0.1"])
    for port in (80, 5432, 6379, 8080):  # a loopback entry reaches local databases too: the README says so
        assert policy.vet("127.0.0.1", port) == ["127.0.0.1"]


def test_a_host_port_entry_on_a_public_host_exempts_its_port_from_the_port_rule() -> None:
    policy = AddressPolicy(["cdn.test:8443"], resolver=lambda host, port: ["93.184.216.34"])
    assert policy.vet("cdn.test", 8443) == ["93.184.216.34"]
    with pytest.raises(Refused) as info:
        policy.vet("cdn.test", 6379)
    assert info.value.reason == "blocked_port"


@pytest.mark.parametrize("entry", ["[::1]:8080", "[0:0:0:0:0:0:0:1]:8080"])
def test_ipv6_entries_with_a_port(entry: str) -> None:
    policy = AddressPolicy([entry])
    assert policy.vet("::1", 8080) == ["::1"]
    assert policy.vet("[::1]", 8080) == ["::1"]
    with pytest.raises(Refused) as info:
        policy.vet("::1", 8081)
    assert info.value.reason == "blocked_address"


def test_a_bare_ipv6_entry_exempts_every_port() -> None:
    for entry in ("::1", "[::1]"):
        assert AddressPolicy([entry]).vet("::1", 6379) == ["::1"]


@pytest.mark.parametrize("allowed", [(), ("127.0.0.1",), ("127.0.0.1:80",)])
def test_port_zero_is_never_a_destination(allowed: tuple[str, ...]) -> None:
    with pytest.raises(Refused) as info:
        AddressPolicy(allowed).vet("127.0.0.1", 0)
    assert info.value.reason == "blocked_port"


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("127.0.0.1", ("127.0.0.1", None)),
        (" LocalHost:8080 ", ("localhost", 8080)),
        ("images.test.:443", ("images.test", 443)),
        ("[::1]", ("::1", None)),
        ("::1", ("::1", None)),
        ("[::1]:9000", ("::1", 9000)),
        ("[0:0::1]:9000", ("::1", 9000)),
    ],
)
def test_allow_list_entries_are_parsed(entry: str, expected: tuple[str, int | None]) -> None:
    assert parse_allowed_host(entry) == expected
    assert parse_allowed_host(format_allowed_host(*expected)) == expected


@pytest.mark.parametrize(
    "entry", ["127.0.0.1:0", "127.0.0.1:65536", "host:http", "host:", "[127.0.0.1]:80", "[::1", "[::1]x", "a:b:c"]
)
def test_bad_allow_list_entries_are_refused(entry: str) -> None:
    with pytest.raises(ValueError, match=r"port|IPv6|host|\]") as info:
        parse_allowed_host(entry)
    with pytest.raises(ValueError, match=re.escape(str(info.value))):
        AddressPolicy([entry])
