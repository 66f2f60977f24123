"""A per-client-address limit on the auth routes: 429 with Retry-After before any database work.

The guarantee: at most ``limit`` requests to register, login and refresh
from one client address are let through in any 60 seconds, however many
arrive at once.  Refused requests are not counted (they cost nothing
downstream), so a client that keeps asking still gets ``limit`` a minute.

How: each address keeps the times of its last ``limit`` admissions in a
ring; a request is admitted when fewer than ``limit`` are recorded or the
oldest is at least a window old, and then takes the oldest's place.  That is
an exact sliding window in O(1) time and ``limit`` floats per address.  The
check and the count happen in one synchronous step under a lock, with no
``await`` between them, so concurrent requests cannot both take the last
place.

The count lives in this process's memory: with several worker processes
each has its own, and an address may get ``limit`` per worker.  Memory is
bounded: an address with no admission within the window carries no
information and is dropped; beyond ``max_addresses`` active addresses the
one admitted least recently is forgotten (its count starts over).

The client address is the TCP peer.  ``X-Forwarded-For`` is read only when
the peer is a trusted proxy; then the address is the right-most entry that
is not itself a trusted proxy.  IPv6 addresses count per /64 (what one
customer is usually given), IPv4-mapped IPv6 addresses as the IPv4 address.
The ASGI server must hand over the real peer: uvicorn rewrites it from
X-Forwarded-For for peers in its FORWARDED_ALLOW_IPS (127.0.0.1 by default)
unless run with ``proxy_headers=False`` (``--no-proxy-headers``).
"""

from __future__ import annotations

import functools
import ipaddress
import math
import threading
import time
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Final

from starlette.types import ASGIApp, Receive, Scope, Send

from chatmem.gateway.errors import envelope

WINDOW: Final = 60.0
"""Seconds: the limit is per minute."""

MAX_ADDRESSES: Final = 10_000
"""Addresses counted at once, at most: about 560 bytes each at the default limit, 5.6 MB in all."""

AUTH_PATHS: Final = frozenset({"/api/auth/register", "/api/auth/login", "/api/auth/refresh",
                              # Accounts (issue 13): each mints a secret (a reset
                              # token, a sign-in) for whoever asks.
                              "/api/auth/password/reset-request", "/api/auth/oidc"})
"""The limited routes.  Not logout: it hashes nothing, looks up one token like
every authenticated route, and refusing it would keep a token alive that its
owner wants revoked."""

UNIX: Final = "unix"
"""In the trusted proxies: a peer without an IP address (a Unix socket)."""

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class _Admissions:
    """The times of one address's last ``limit`` admissions, as a ring."""

    __slots__ = ("head", "last", "times")

    def __init__(self) -> None:
        self.times = array("d")
        self.head = 0  # once full: the index of the oldest time
        self.last = 0.0


class SlidingWindow:
    """At most ``limit`` admissions per key in any ``window`` seconds."""

    def __init__(self, limit: int, *, window: float = WINDOW, max_addresses: int = MAX_ADDRESSES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 1 or window <= 0 or max_addresses < 1:
            raise ValueError("limit and max_addresses must be at least 1, window positive")
        self.limit = limit
        self.window = window
        self.max_addresses = max_addresses
        self.clock = clock
        # Ordered by last admission, the least recent first.
        self._keys: OrderedDict[str, _Admissions] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._keys)

    def acquire(self, key: str) -> float:
        """Count one request of ``key`` and return 0.0, or refuse it and return the seconds to wait."""
        with self._lock:
            now = self.clock()
            keys = self._keys
            # Drop the addresses idle for a window, least recent first: each
            # is dropped once, so this costs O(1) per call on average.
            while keys:
                oldest = next(iter(keys.values()))
                if now - oldest.last < self.window:
                    break
                keys.popitem(last=False)
            entry = keys.get(key)
            if entry is None:
                if len(keys) >= self.max_addresses:
                    keys.popitem(last=False)
                entry = keys[key] = _Admissions()
            times = entry.times
            if len(times) < self.limit:
                times.append(now)
            else:
                wait = times[entry.head] + self.window - now
                if wait > 0:
                    return wait
                times[entry.head] = now
                entry.head = (entry.head + 1) % self.limit
            entry.last = now
            keys.move_to_end(key)
            return 0.0


def parse_networks(items: Iterable[str]) -> tuple[frozenset[_Network], bool]:
    """The trusted proxies: IPs and CIDRs, and whether ``unix`` was named.  A typo is an error."""
    networks: set[_Network] = set()
    unix = False
    for raw in items:
        item = raw.strip()
        if not item:
            continue
        if item.lower() == UNIX:
            unix = True
            continue
        try:
            networks.add(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"trusted proxy {item!r} is neither an IP address, a CIDR nor 'unix'") from None
    return frozenset(networks), unix


def _ip(text: str) -> _Address | None:
    """An X-Forwarded-For entry or peer host as an address: ``1.2.3.4``, ``1.2.3.4:80``, ``[::1]:80``."""
    # Parsing is most of the cost of a check (5 us): cached, but never for a
    # string too long to be an address, which would pin memory in the cache.
    return None if len(text) > 64 else _parse_ip(text)


@functools.lru_cache(maxsize=4096)
def _parse_ip(text: str) -> _Address | None:
    if text.startswith("["):
        text = text[1:text.find("]")] if "]" in text else text
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@functools.lru_cache(maxsize=4096)
def _key(address: _Address) -> str:
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class ClientAddress:
    """The key a request counts under: its client's address (see the module's doc)."""

    def __init__(self, trusted_proxies: Iterable[str] = ()) -> None:
        self.networks, self.unix = parse_networks(trusted_proxies)
        self._v4 = tuple(n for n in self.networks if n.version == 4)
        self._v6 = tuple(n for n in self.networks if n.version == 6)

    def trusted(self, address: _Address) -> bool:
        networks = self._v4 if address.version == 4 else self._v6
        return any(address in network for network in networks)

    def __call__(self, scope: Scope) -> str:
        client = scope.get("client")
        host = client[0] if client else None
        if host:
            peer = _ip(host)
            if peer is None:
                return f"?{host[:64]}"  # not an IP address: a name the server gave the peer
            if not self.trusted(peer):
                return _key(peer)
            fallback = _key(peer)
        else:
            # A Unix socket (or a server that does not say): all one address.
            if not self.unix:
                return UNIX
            fallback = UNIX
        # The peer is a trusted proxy: walk its X-Forwarded-For from the right.
        hops = [hop.strip() for name, value in scope["headers"] if name == b"x-forwarded-for"
                for hop in value.decode("latin-1").split(",")]
        hops = [hop for hop in hops if hop]
        if not hops:
            return fallback
        for hop in reversed(hops):
            address = _ip(hop)
            if address is None:
                # Written by a trusted proxy, but not an address ("unknown"):
                # all such clients share one count.
                return f"?{hop[:64]}"
            if not self.trusted(address):
                return _key(address)
        # Every hop is a trusted proxy: the farthest one is the client.
        first = _ip(hops[0])
        assert first is not None
        return _key(first)


def route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


class AuthRateLimit:
    """ASGI middleware: POSTs to :data:`AUTH_PATHS` past the limit get 429 and are not read."""

    def __init__(self, app: ASGIApp, *, limiter: SlidingWindow, client_address: ClientAddress,
                 paths: frozenset[str] = AUTH_PATHS) -> None:
        self.app = app
        self.limiter = limiter
        self.client_address = client_address
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and route_path(scope) in self.paths:
            wait = self.limiter.acquire(self.client_address(scope))
            if wait:
                retry_after = max(1, math.ceil(wait))
                refusal = envelope(
                    429, "too_many_requests",
                    f"too many auth requests from this address: at most {self.limiter.limit} a minute "
                    "to register, login and refresh together",
                    f"Try again in {retry_after} s (Retry-After).", {"Retry-After": str(retry_after)})
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)
