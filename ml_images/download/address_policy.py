"""Which network addresses an untrusted image URL may reach (SSRF defence).

The rule: every address a host resolves to must be globally routable, or the host must be listed in
``ML_IMAGES_ALLOWED_PRIVATE_HOSTS`` (a ``host:port`` entry exempts that port only, a bare ``host`` every port).
``ipaddress.is_global`` alone is not enough on the Python this project runs on (3.11.7 predates the
CVE-2024-4032 fixes): it reports ``64:ff9b::a9fe:a9fe`` and ``2002:a9fe:a9fe::1`` (both embed 169.254.169.254),
multicast and ``::a.b.c.d`` as global. So IPv6 forms that embed an IPv4 address are unwrapped and judged as that
IPv4 address, and both families are checked against explicit lists.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Collection, Iterable

from ml_images.outcomes import ReasonCode, Refused

Resolver = Callable[[str, int], list[str]]

# Not globally reachable (IANA special-purpose registries), listed explicitly because the interpreter's own
# tables are incomplete on 3.11.7 (multicast counts as global there, for instance).
_BLOCKED_V4 = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",  # "this network", unspecified
        "10.0.0.0/8",  # private
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local, cloud metadata (169.254.169.254)
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # deprecated 6to4 relay anycast
        "192.168.0.0/16",  # private
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, broadcast
    )
)

# Unicast on the Internet comes only from 2000::/3; everything outside it (ULA, link-local, multicast,
# discard, 64:ff9b:1::/48, 5f00::/16 ...) is refused without consulting the interpreter.
_GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")
_BLOCKED_V6 = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "2001::/23",  # IETF protocol assignments, Teredo (2001::/32) included: tunnels are never an image host
        "2001:db8::/32",  # documentation
        "2002::/16",  # 6to4 (unwrapped before this check; refused if it gets here)
        "3fff::/20",  # documentation (RFC 9637)
    )
)
_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
_STANDARD_PORTS = frozenset({80, 443})
_MAX_PORT = 65535


def _embedded_ipv4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, when it is one of the IPv4-embedding forms."""
    if addr.ipv4_mapped is not None:  # ::ffff:a.b.c.d
        return addr.ipv4_mapped
    if addr in _NAT64_WELL_KNOWN:  # 64:ff9b::a.b.c.d, what DNS64 returns on IPv6-only networks
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    if addr.sixtofour is not None:  # 2002:AABB:CCDD::/48
        return addr.sixtofour
    if int(addr) >> 32 == 0:  # deprecated IPv4-compatible ::a.b.c.d (also :: and ::1)
        return ipaddress.IPv4Address(int(addr))
    return None


def _is_public_v4(addr: ipaddress.IPv4Address) -> bool:
    if any(addr in net for net in _BLOCKED_V4):
        return False
    return addr.is_global and not (
        addr.is_multicast or addr.is_reserved or addr.is_loopback or addr.is_link_local or addr.is_unspecified
    )


def _is_public_v6(addr: ipaddress.IPv6Address) -> bool:
    if addr not in _GLOBAL_UNICAST_V6 or any(addr in net for net in _BLOCKED_V6):
        return False
    return addr.is_global and not (addr.is_multicast or addr.is_reserved or addr.is_site_local)


def is_public_address(ip: str) -> bool:
    """True when ``ip`` is a globally routable unicast address (IPv4-in-IPv6 forms judged by their IPv4)."""
    text = ip.strip().strip("[]").split("%", 1)[0]  # zone ids (fe80::1%eth0) are link-local anyway
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(addr)
        return _is_public_v4(embedded) if embedded is not None else _is_public_v6(addr)
    return _is_public_v4(addr)


def normalize_host(host: str) -> str:
    """Lower-case, without IPv6 brackets or a trailing dot: the form allow-lists are compared in."""
    return host.strip().strip("[]").rstrip(".").lower()


def parse_allowed_host(entry: str) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``[v6]``, ``[v6]:port`` or a bare IPv6 address → (normalised host, port or None).

    Raises ``ValueError`` with a message meant for a person (the settings turn it into a configuration error).
    """
    text = entry.strip()
    if not text:
        raise ValueError("empty entry")
    port_text: str | None = None
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise ValueError(f"{entry!r}: missing ']' after the IPv6 address")
        host, rest = text[1:close], text[close + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"{entry!r}: expected ':port' after ']'")
            port_text = rest[1:]
        if _literal_ip(host) is None or ":" not in host:
            raise ValueError(f"{entry!r}: brackets are for IPv6 addresses")
    elif text.count(":") == 1:
        host, port_text = text.split(":", 1)
    else:  # no colon, or a bare IPv6 address (several colons, no brackets: no port can be told apart)
        host = text
        if ":" in host and _literal_ip(host) is None:
            raise ValueError(f"{entry!r}: not an IPv6 address; write [address]:port for a port")
    name = normalize_host(host)
    if not name or any(c.isspace() or c in "/@?#[]" for c in name):
        raise ValueError(f"{entry!r}: not a host name or address")
    name = _literal_ip(name) or name  # the form URLs are compared in (0:0::1 → ::1)
    if port_text is None:
        return name, None
    if not port_text.isdigit() or not 1 <= int(port_text) <= _MAX_PORT:
        raise ValueError(f"{entry!r}: the port must be a number from 1 to {_MAX_PORT}")
    return name, int(port_text)


def format_allowed_host(host: str, port: int | None) -> str:
    """The canonical text of an allow-list entry (the inverse of ``parse_allowed_host``)."""
    if port is None:
        return host
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def system_resolver(host: str, port: int) -> list[str]:
    """All addresses the system resolver gives for ``host``, in its order, without duplicates."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: dict[str, None] = {}
    for info in infos:
        seen.setdefault(str(info[4][0]), None)
    return list(seen)


def _literal_ip(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.split("%", 1)[0]))
    except ValueError:
        return None


class AddressPolicy:
    """Resolves a host once and vets every address; the caller connects only to what ``vet`` returned.

    Returning the vetted addresses (instead of a yes/no) is what closes the DNS-rebinding gap: there is no
    second lookup between the check and the connection.
    """

    def __init__(self, allowed_private_hosts: Collection[str] = (), resolver: Resolver | None = None) -> None:
        """``allowed_private_hosts``: entries as ``parse_allowed_host`` reads them (``ValueError`` on a bad one)."""
        entries = _parse_entries(allowed_private_hosts)
        self.allowed_private_hosts = frozenset(host for host, port in entries if port is None)
        self.allowed_private_ports = frozenset((host, port) for host, port in entries if port is not None)
        self._resolve = resolver or system_resolver

    def is_allowed_private(self, host: str, port: int | None = None) -> bool:
        """Whether ``host`` (on ``port``, when given) is exempt from the private-address and port checks."""
        name = normalize_host(host)
        return name in self.allowed_private_hosts or (port is not None and (name, port) in self.allowed_private_ports)

    def vet(self, host: str, port: int) -> list[str]:
        """The addresses to connect to for ``host:port``, or Refused.

        Reasons: ``dns_failure`` (no address), ``blocked_address`` (any address is not public: one bad answer
        taints the whole lookup, since an attacker controlling DNS could otherwise rotate a private address
        in), ``blocked_port`` (port 0, which is never a destination, on any host; not 80/443 on a host that
        is not allow-listed for that port).
        """
        name = normalize_host(host)
        if not name:
            raise Refused(ReasonCode.BAD_URL, "no host")
        if not 1 <= port <= _MAX_PORT:
            raise Refused(ReasonCode.BLOCKED_PORT, f"port {port} on {name} is not a destination")
        allowed = self.is_allowed_private(name, port)
        literal = _literal_ip(name)
        if literal is not None:
            addresses = [literal]
        else:
            try:
                addresses = [a for a in (self._resolve(name, port) or []) if a]
            except (OSError, UnicodeError) as exc:
                raise Refused(ReasonCode.DNS_FAILURE, f"{name}: {type(exc).__name__}") from None
            if not addresses:
                raise Refused(ReasonCode.DNS_FAILURE, f"{name}: no address")
        if allowed:
            return addresses
        refused = [a for a in addresses if not is_public_address(a)]
        if refused:
            raise Refused(ReasonCode.BLOCKED_ADDRESS, f"{name} resolves to non-public {', '.join(refused)}")
        # Image CDNs serve on 80/443. Other ports on public hosts are how services that trust their network
        # (Redis :6379, Elasticsearch :9200, admin consoles) get probed through an SSRF, so only allow-listed
        # hosts (local demo and test servers) may use other ports.
        if port not in _STANDARD_PORTS:
            raise Refused(ReasonCode.BLOCKED_PORT, f"port {port} on {name} (only 80 and 443 are allowed)")
        return addresses


def _parse_entries(entries: Iterable[str]) -> list[tuple[str, int | None]]:
    return [parse_allowed_host(entry) for entry in entries if entry.strip()]
