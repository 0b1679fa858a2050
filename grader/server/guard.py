"""The front of ``grader serve``: waitress, with the three limits it lacks against hostile clients.

Why waitress, extended, rather than another server: waitress already holds idle sockets cheaply
(one I/O thread, ``poll``), buffers a whole request before a request thread sees it, and is pure
Python. What it lacks, measured: its ``channel_timeout`` only measures *inactivity*, so 520
sockets that each send one byte every 20 s held every connection slot and nobody got an answer;
its one body cap applies to every route, so an anonymous 400 MB POST to ``/`` was spooled to disk
before the 405. The three additions are small subclasses of waitress's server, channel and
parser (pinned to waitress 3, which they were written and tested against):

- **a deadline for receiving a request**: its line and headers within :attr:`Limits.head_seconds`
  of its first byte, its body at no less than :attr:`Limits.body_rate` bytes a second after that;
  a request still incomplete past its deadline is closed, however often it trickles a byte;
- **a cap on open connections per client address** (an IPv6 client by its /64, which one machine
  usually holds whole); the trusted reverse proxy is exempt: it holds the clients' sockets itself;
- **each route's body cap decided from the request line and headers** (``body_cap``), before any
  byte of the body is read: a declared body over it is never stored. Up to :attr:`Limits.drain`
  bytes of it are read and dropped so that the client, which sends its whole body before reading
  the answer (browsers do), reads the app's refusal page instead of a reset connection; a bigger
  one is answered at once and its connection closed.

The connection limit is high (idle sockets cost little: a few KB each) and bounded by the
process's file descriptors; ``poll`` replaces ``select``, which stops at descriptor 1024.
"""

from __future__ import annotations

import collections
import ipaddress
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import MultiSocketServer, TcpWSGIServer
from waitress.task import ThreadedTaskDispatcher

#: (method, path, headers as waitress keeps them: ``CONTENT_LENGTH``, ``COOKIE``) -> bytes
BodyCap = Callable[[str, str, Mapping[str, str]], int]


@dataclass(frozen=True)
class Limits:
    """What one client may hold of the server (``grader serve`` keeps the defaults)."""

    # Open connections in all. Idle keep-alive sockets of a few hundred learners' tabs fit many
    # times over; past it, new connections wait in the listen backlog.
    connections: int = 4000
    # Open connections of one client address: a classroom behind one NAT with a few tabs each.
    per_address: int = 100
    # Seconds to send a request's line and headers: one packet from any real client, even a phone
    # on a bad network; a slowloris client sending a byte every few seconds never finishes.
    head_seconds: float = 10.0
    # Bytes a second a body must at least arrive at: a 10 MB notebook over a 128 kbit/s uplink.
    body_rate: float = 16 * 1024
    # Seconds an idle connection is kept between two requests (waitress's channel_timeout).
    idle_seconds: int = 30
    # A refused body up to this size is read and dropped so that its client reads the refusal.
    drain: int = 64 * 1024 * 1024
    # Addresses the per-address cap does not apply to (the trusted reverse proxy).
    exempt: frozenset[str] = field(default_factory=frozenset)


def address_key(host: str) -> str:
    """The address whose connections are counted together: an IPv4 address, an IPv6 /64."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class _Dropped:
    """The body receiver of a refused body: counts its bytes, keeps none."""

    error = None

    def __init__(self, length: int) -> None:
        self.remaining = length
        self.completed = length == 0

    def received(self, data: bytes) -> int:
        taken = min(self.remaining, len(data))
        self.remaining -= taken
        self.completed = self.remaining == 0
        return taken

    def getfile(self) -> BytesIO:
        return BytesIO()

    def getbuf(self) -> BytesIO:
        return BytesIO()

    def __len__(self) -> int:
        return 0


class _CappedAdjustments:
    """The server's adjustments with one request's body cap (what waitress counts a chunked
    body against)."""

    def __init__(self, adj: Adjustments, cap: int) -> None:
        self._adj = adj
        self.max_request_body_size = cap

    def __getattr__(self, name: str) -> Any:
        return getattr(self._adj, name)


class GuardedParser(HTTPRequestParser):
    """waitress's request parser, deciding the body cap once the headers are in."""

    body_length = 0  # the body this request may still send: its deadline depends on it
    swallow = False  # refused and answered at once: what follows its headers is never parsed

    def __init__(self, adj: Adjustments, server: GuardedServer) -> None:
        super().__init__(adj)
        self._server = server

    def received(self, data: bytes) -> int:
        consumed = super().received(data)
        return len(data) if self.swallow else consumed

    def parse_header(self, header_plus: bytes) -> None:
        super().parse_header(header_plus)
        limits = self._server.limits
        cap = self._server.body_cap(self.command, self.path, self.headers)
        if self.chunked:  # no declared length: waitress stops counting at the cap
            self.adj = _CappedAdjustments(self.adj, cap)
            self.body_length = cap
            return
        self.body_length = self.content_length
        if self.content_length <= cap:
            return
        # Refused: the app answers (its page says the limit) from the headers alone, since the
        # declared length is over its cap too; the body is dropped, then the connection closed.
        self.headers["CONNECTION"] = "close"
        declared, self.content_length = self.content_length, 0
        if self.expect_continue or declared > limits.drain:
            self.expect_continue = False  # no "100 Continue": the client never sends it
            self.body_rcv = None
            self.body_length = 0
            self.swallow = True
        else:
            self.body_rcv = _Dropped(declared)


class GuardedChannel(HTTPChannel):
    """waitress's connection, with a deadline for each request it receives."""

    started: float | None = None  # monotonic time of the current request's first byte

    def __init__(self, server: GuardedServer, sock: Any, addr: Any, adj: Any, map=None) -> None:
        self.key = address_key(str(addr[0]))
        super().__init__(server, sock, addr, adj, map=map)
        self.parser_class = lambda adj: GuardedParser(adj, server)

    def received(self, data: bytes) -> bool:
        before = self.request
        if before is None and data:
            self.started = time.monotonic()
        result = super().received(data)
        if self.request is None:
            self.started = None
        elif self.request is not before:  # one request ended and the next began in this data
            self.started = time.monotonic()
        return result

    def overdue(self, now: float) -> bool:
        """Whether the request being received is past its deadline (never one being served)."""
        if self.started is None or self.requests or self.request is None:
            return False
        limits: Limits = self.server.limits
        allowed = limits.head_seconds
        if self.request.headers_finished:
            allowed += self.request.body_length / limits.body_rate
        return now - self.started > allowed

    def add_channel(self, map=None) -> None:
        super().add_channel(map)
        self.server.open_per_address[self.key] += 1

    def del_channel(self, map=None) -> None:
        if self._fileno is not None and self._fileno in self.server.active_channels:
            counts = self.server.open_per_address
            counts[self.key] -= 1
            if counts[self.key] <= 0:
                del counts[self.key]
        super().del_channel(map)


class GuardedServer(TcpWSGIServer):
    """waitress's TCP server, with the per-address cap at accept and the deadline sweep."""

    channel_class = GuardedChannel

    def __init__(self, application: Any, limits: Limits, body_cap: BodyCap, **kw: Any) -> None:
        self.limits = limits
        self.body_cap = body_cap
        self.open_per_address: collections.Counter[str] = collections.Counter()
        self.refused_connections = 0  # closed at accept by the per-address cap
        self.overdue_closed = 0  # closed past their request's deadline
        super().__init__(application, **kw)

    def handle_accept(self) -> None:
        try:
            accepted = self.accept()
            if accepted is None:
                return
            conn, addr = accepted
            self.set_socket_options(conn)
        except OSError:  # the client left before we got to it
            return
        addr = self.fix_addr(addr)
        key = address_key(str(addr[0]))
        limits = self.limits
        if addr[0] not in limits.exempt and self.open_per_address[key] >= limits.per_address:
            self.refused_connections += 1
            conn.close()
            return
        self.channel_class(self, conn, addr, self.adj, map=self._map)

    def maintenance(self, now: float) -> None:
        super().maintenance(now)  # idle connections
        clock = time.monotonic()
        for channel in list(self.active_channels.values()):
            if not channel.will_close and channel.overdue(clock):
                self.overdue_closed += 1
                channel.will_close = True  # the loop closes it on its next pass


def create_guarded_server(
    app: Any, *, limits: Limits, body_cap: BodyCap, max_body: int, **options: Any
) -> Any:
    """A waitress server (``.run()`` serves) for every address ``host`` resolves to, with
    :class:`Limits` and ``body_cap``; ``max_body`` is the largest body any route takes."""
    adj = Adjustments(
        connection_limit=limits.connections,
        channel_timeout=limits.idle_seconds,
        cleanup_interval=1,  # the deadline sweep: a second late at most
        asyncore_use_poll=True,
        max_request_body_size=max_body,
        **options,
    )
    dispatcher = ThreadedTaskDispatcher()
    dispatcher.set_thread_count(adj.threads)
    socket_map: dict[int, Any] = {}
    servers = [
        GuardedServer(
            app,
            limits,
            body_cap,
            map=socket_map,
            dispatcher=dispatcher,
            adj=adj,
            sockinfo=sockinfo,
        )
        for sockinfo in adj.listen
    ]
    if len(servers) == 1:
        return servers[0]
    listening = [(s.effective_host, s.effective_port) for s in servers]
    return MultiSocketServer(socket_map, adj, listening, dispatcher, servers[-1].log_info)
