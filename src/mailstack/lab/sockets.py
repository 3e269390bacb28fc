"""The lectures' first socket programs, done properly: an uppercase server and
its client, over UDP (RFC 768) and over TCP (RFC 9293).

UDP: the client sends each line as one datagram and waits for the answer with
a timeout, sending again a few times (UDP may lose the question or the
answer); the server answers each datagram to the address it came from, all
clients on its one socket. TCP: the server's welcoming socket stays open and
each accept() gives a client a connection socket of its own, served in a
thread of its own, so clients are served at once; the client sends its lines
and reads the uppercased lines back over one connection.

`--trace` prints every socket call as it happens, on the one trace
(common/trace): ``[tcp welcoming] -- listen(16)``, ``[tcp 2] -- recv(2048) =
6 bytes``, and the lines themselves as ``C:``/``S:``. See docs/lab-sockets.md.
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from types import FrameType
from typing import Any

from mailstack.common.trace import SessionTrace, Tracer
from mailstack.errors import MailstackError
from mailstack.schema import address_text
from mailstack.ua.discover import parse_host_port

# The lectures' serverPort.
DEFAULT_PORT = 12000
DEFAULT_SERVER = f"127.0.0.1:{DEFAULT_PORT}"
# The largest UDP payload over IPv4: 65,535 less the IP and UDP headers.
MAX_DATAGRAM = 65507
RECV_SIZE = 2048
LISTEN_BACKLOG = 16
# How much of a datagram or a read a socket-call trace line shows.
SHOWN_BYTES = 40


def _shown(data: bytes) -> str:
    return repr(data[:SHOWN_BYTES]) + ("..." if len(data) > SHOWN_BYTES else "")


def _peer(address: Any) -> str:
    return address_text((address[0], address[1]))


def uppercase(line: bytes) -> bytes:
    """The server's whole job; bytes that are not UTF-8 pass unchanged."""
    return line.decode("utf-8", "surrogateescape").upper().encode("utf-8", "surrogateescape")


class TracedSocket:
    """A socket whose calls show on ``trace`` as they happen."""

    def __init__(self, sock: socket.socket, trace: SessionTrace) -> None:
        self.sock = sock
        self.trace = trace

    @classmethod
    def open(
        cls, family: socket.AddressFamily, kind: socket.SocketKind, trace: SessionTrace
    ) -> TracedSocket:
        sock = socket.socket(family, kind)
        trace.note(f"socket({family.name}, {kind.name}) = fd {sock.fileno()}")
        return cls(sock, trace)

    def settimeout(self, seconds: float) -> None:
        self.sock.settimeout(seconds)
        self.trace.note(f"settimeout({seconds:g})")

    def bind(self, address: tuple[str, int]) -> None:
        self.sock.bind(address)
        self.trace.note(f"bind({address_text(address)}) bound to {_peer(self.sock.getsockname())}")

    def listen(self, backlog: int) -> None:
        self.sock.listen(backlog)
        self.trace.note(f"listen({backlog})")

    def accept(self) -> tuple[socket.socket, Any]:
        conn, peer = self.sock.accept()
        self.trace.note(
            f"accept() = fd {conn.fileno()}, a new connection socket, from {_peer(peer)}"
        )
        return conn, peer

    def connect(self, address: tuple[str, int]) -> None:
        self.sock.connect(address)
        self.trace.note(f"connect({address_text(address)}) from {_peer(self.sock.getsockname())}")

    def recv(self, size: int) -> bytes:
        data = self.sock.recv(size)
        self.trace.note(f"recv({size}) = {len(data)} bytes {_shown(data)}")
        return data

    def send(self, data: bytes) -> None:
        """Every byte of ``data``: send() may take only part of it."""
        while data:
            sent = self.sock.send(data)
            self.trace.note(f"send({_shown(data)}) = {sent}")
            data = data[sent:]

    def recvfrom(self, size: int) -> tuple[bytes, Any]:
        data, peer = self.sock.recvfrom(size)
        self.trace.note(f"recvfrom({size}) = {len(data)} bytes {_shown(data)} from {_peer(peer)}")
        return data, peer

    def sendto(self, data: bytes, address: Any) -> None:
        sent = self.sock.sendto(data, address)
        self.trace.note(f"sendto({_shown(data)}, {_peer(address)}) = {sent}")

    def close(self) -> None:
        fd = self.sock.fileno()
        self.sock.close()
        self.trace.note(f"close() fd {fd}")


def _stop_on_sigterm() -> None:
    """SIGTERM stops a server as Ctrl-C does: its sockets closed, traced."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def _announce(kind: str, sock: TracedSocket) -> None:
    print(f"uppercase server ({kind}) listening on {_peer(sock.sock.getsockname())}", flush=True)


# -- UDP ---------------------------------------------------------------------


def udp_server(address: tuple[str, int], tracer: Tracer) -> None:
    """Answer each datagram with its uppercase, until interrupted."""
    trace = tracer.named("udp server")
    sock = TracedSocket.open(_family(address[0]), socket.SOCK_DGRAM, trace)
    try:
        sock.bind(address)
        _announce("udp", sock)
        while True:
            data, client = sock.recvfrom(MAX_DATAGRAM)
            trace.client(data)
            reply = uppercase(data)
            trace.server(reply)
            sock.sendto(reply, client)
    finally:
        sock.close()


def udp_client(
    server: tuple[str, int], lines: Iterable[bytes], tracer: Tracer, timeout: float, tries: int
) -> int:
    """Each line as a datagram, its answer printed; 1 when some got none."""
    address = _resolve(server, socket.SOCK_DGRAM)
    trace = tracer.named("udp client")
    sock = TracedSocket.open(_family(address[0]), socket.SOCK_DGRAM, trace)
    unanswered = 0
    try:
        sock.settimeout(timeout)
        for number, line in enumerate(lines, 1):
            if len(line) > MAX_DATAGRAM:
                print(
                    f"line {number}: {len(line)} bytes, more than a datagram holds "
                    f"({MAX_DATAGRAM})",
                    file=sys.stderr,
                )
                unanswered += 1
                continue
            reply = _ask(sock, line, address, timeout, tries)
            if reply is None:
                print(
                    f"line {number}: no answer from {_peer(address)} after {tries} "
                    f"tries of {timeout:g} s",
                    file=sys.stderr,
                )
                unanswered += 1
            else:
                _print_line(reply)
    finally:
        sock.close()
    return 1 if unanswered else 0


def _ask(sock: TracedSocket, line: bytes, server: Any, timeout: float, tries: int) -> bytes | None:
    """Send ``line`` until an answer comes from ``server``, at most ``tries`` times."""
    _drop_late_answers(sock)
    for _ in range(tries):
        sock.trace.client(line)
        sock.sendto(line, server)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            sock.sock.settimeout(left)
            try:
                data, peer = sock.recvfrom(MAX_DATAGRAM)
            except TimeoutError:
                break
            if (peer[0], peer[1]) == (server[0], server[1]):
                sock.trace.server(data)
                return data
            sock.trace.note(f"ignored a datagram from {_peer(peer)}, not the server")
        sock.trace.note(f"no answer within {timeout:g} s")
    return None


def _drop_late_answers(sock: TracedSocket) -> None:
    """Answers to an earlier try that came after we gave up on it: nothing in
    a datagram says which question it answers (DNS adds an ID for this)."""
    sock.sock.setblocking(False)  # _ask sets the timeout again
    while True:
        try:
            data, _ = sock.sock.recvfrom(MAX_DATAGRAM)
        except BlockingIOError:
            return
        sock.trace.note(f"dropped a late answer {_shown(data)}")


# -- TCP ---------------------------------------------------------------------


def tcp_server(
    address: tuple[str, int], tracer: Tracer, max_clients: int, idle_timeout: float, max_line: int
) -> None:
    """Accept clients on the welcoming socket, each served on its own
    connection socket in a thread of its own, at most ``max_clients`` at once
    (the others wait in the listen queue)."""
    trace = tracer.named("tcp welcoming")
    welcoming = TracedSocket.open(_family(address[0]), socket.SOCK_STREAM, trace)
    slots = threading.BoundedSemaphore(max_clients)
    try:
        welcoming.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        welcoming.bind(address)
        welcoming.listen(LISTEN_BACKLOG)
        _announce("tcp", welcoming)
        while True:
            slots.acquire()
            try:
                conn, peer = welcoming.accept()
            except BaseException:
                slots.release()
                raise
            connection = TracedSocket(conn, tracer.session("tcp", _peer(peer)))
            threading.Thread(
                target=_serve_connection,
                args=(connection, slots, idle_timeout, max_line),
                daemon=True,
            ).start()
    finally:
        welcoming.close()


def _serve_connection(
    conn: TracedSocket, slots: threading.BoundedSemaphore, idle_timeout: float, max_line: int
) -> None:
    try:
        conn.settimeout(idle_timeout)
        lines = _lines(conn, max_line)
        for line in lines:
            conn.trace.client(line)
            reply = uppercase(line) + b"\n"
            conn.trace.server(reply)
            conn.send(reply)
    except TimeoutError:
        conn.trace.note(f"idle for {idle_timeout:g} s")
    except LineTooLong:
        conn.trace.server(b"line too long")
        conn.send(f"line too long (at most {max_line} bytes)\n".encode())
    except OSError as exc:
        conn.trace.note(exc.strerror or str(exc))
    finally:
        conn.close()
        conn.trace.close()
        slots.release()


class LineTooLong(Exception):
    pass


def _lines(conn: TracedSocket, max_line: int) -> Iterator[bytes]:
    """The lines the peer sends, without their line ends, until it closes."""
    buffer = b""
    while data := conn.recv(RECV_SIZE):
        buffer += data
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            line = line.removesuffix(b"\r")
            if len(line) > max_line:
                raise LineTooLong
            yield line
        if len(buffer) > max_line + 1:  # the line so far, and perhaps its CR
            raise LineTooLong
    if buffer:
        yield buffer


def tcp_client(
    server: tuple[str, int], lines: Iterable[bytes], tracer: Tracer, timeout: float
) -> int:
    """Send each line and print the answer, over one connection."""
    address = _resolve(server, socket.SOCK_STREAM)
    trace = tracer.named("tcp client")
    sock = TracedSocket.open(_family(address[0]), socket.SOCK_STREAM, trace)
    try:
        sock.settimeout(timeout)
        try:
            sock.connect(address)
        except OSError as exc:
            raise MailstackError(f"cannot connect to {_peer(address)}: {_reason(exc)}") from None
        buffer = b""
        for line in lines:
            trace.client(line)
            sock.send(line + b"\n")
            while b"\n" not in buffer:
                try:
                    data = sock.recv(RECV_SIZE)
                except OSError as exc:
                    raise MailstackError(f"{_peer(address)}: {_reason(exc)}") from None
                if not data:
                    raise MailstackError(f"{_peer(address)} closed the connection")
                buffer += data
            reply, _, buffer = buffer.partition(b"\n")
            trace.server(reply)
            _print_line(reply)
    finally:
        sock.close()
    return 0


# -- helpers -----------------------------------------------------------------


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _resolve(server: tuple[str, int], kind: socket.SocketKind) -> tuple[str, int]:
    """The server's first address (a name is looked up, as the lectures' client does)."""
    host, port = server
    try:
        infos = socket.getaddrinfo(host, port, type=kind)
    except socket.gaierror as exc:
        raise MailstackError(f"--server {host}: {exc.strerror}") from None
    found = infos[0][4]
    return str(found[0]), int(found[1])


def _reason(exc: OSError) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return exc.strerror or str(exc)


def _print_line(line: bytes) -> None:
    sys.stdout.write(line.decode("utf-8", "replace") + "\n")
    sys.stdout.flush()


def _input_lines(sentences: list[str]) -> Iterator[bytes]:
    """The command line's sentences, else standard input's lines (asked for
    as the lectures' client asks when it is a terminal)."""
    if sentences:
        yield from (sentence.encode() for sentence in sentences)
        return
    stdin = sys.stdin.buffer
    while True:
        if sys.stdin.isatty():
            sys.stderr.write("Input lowercase sentence: ")
            sys.stderr.flush()
        line = stdin.readline()
        if not line:
            return
        yield line.rstrip(b"\r\n")


# -- the commands ------------------------------------------------------------


def cmd_server(args: argparse.Namespace) -> int:
    address = (args.bind, args.port)
    tracer = Tracer(enabled=args.trace)
    _stop_on_sigterm()
    try:
        if args.udp:
            udp_server(address, tracer)
        else:
            tcp_server(address, tracer, args.max_clients, args.idle_timeout, args.max_line)
    except KeyboardInterrupt:
        print("stopped", flush=True)
    except OSError as exc:
        raise MailstackError(f"cannot serve on {address_text(address)}: {_reason(exc)}") from None
    return 0


def cmd_client(args: argparse.Namespace) -> int:
    server = parse_host_port(args.server, "--server")
    tracer = Tracer(enabled=args.trace, out=sys.stderr)
    lines = _input_lines(args.sentence)
    try:
        if args.udp:
            return udp_client(server, lines, tracer, args.timeout, args.tries)
        return tcp_client(server, lines, tracer, args.timeout)
    except OSError as exc:  # the ones tcp_client does not word itself
        raise MailstackError(f"{args.server}: {_reason(exc)}") from None


def _positive(kind: type[int] | type[float]) -> Any:
    def convert(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"expected more than 0, got {text!r}")
        return value

    return convert


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {text!r}")
    return int(text)


def add_commands(lab_subparsers: Any, common_parent: argparse.ArgumentParser) -> None:
    """Add `uppercase-server` and `uppercase-client` to the `lab` command.
    They use no node, so ``common_parent`` (its --config, --data-dir) is not
    theirs; it is taken so every lab command registers alike."""
    del common_parent
    p = lab_subparsers.add_parser(
        "uppercase-server", help="the lectures' first server: answers each line in uppercase"
    )
    transport = p.add_mutually_exclusive_group(required=True)
    transport.add_argument("--udp", action="store_true", help="one socket, a datagram per line")
    transport.add_argument(
        "--tcp", action="store_true", help="a welcoming socket, a connection socket per client"
    )
    p.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        help=f"the port (default {DEFAULT_PORT}; 0: one the system picks)",
    )
    p.add_argument(
        "--bind",
        default="127.0.0.1",
        metavar="ADDRESS",
        help="the address to listen on (default 127.0.0.1)",
    )
    p.add_argument("--trace", action="store_true", help="print each socket call as it happens")
    p.add_argument(
        "--max-clients",
        type=_positive(int),
        default=64,
        metavar="N",
        help="TCP: clients served at once; more wait to be accepted (default 64)",
    )
    p.add_argument(
        "--idle-timeout",
        type=_positive(float),
        default=60.0,
        metavar="SECONDS",
        help="TCP: close a connection silent this long (default 60)",
    )
    p.add_argument(
        "--max-line",
        type=_positive(int),
        default=65536,
        metavar="BYTES",
        help="TCP: the longest line answered (default 65536)",
    )
    p.set_defaults(func=cmd_server)

    p = lab_subparsers.add_parser(
        "uppercase-client", help="the lectures' first client: sends lines, prints the answers"
    )
    transport = p.add_mutually_exclusive_group(required=True)
    transport.add_argument("--udp", action="store_true", help="each line as a datagram")
    transport.add_argument("--tcp", action="store_true", help="the lines over one connection")
    p.add_argument(
        "--server",
        default=DEFAULT_SERVER,
        metavar="HOST:PORT",
        help=f"the server (default {DEFAULT_SERVER})",
    )
    p.add_argument("--trace", action="store_true", help="print each socket call on stderr")
    p.add_argument(
        "--timeout",
        type=_positive(float),
        default=1.0,
        metavar="SECONDS",
        help="how long to wait for an answer (UDP: per try; default 1)",
    )
    p.add_argument(
        "--tries",
        type=_positive(int),
        default=3,
        metavar="N",
        help="UDP: how many times to send a line that gets no answer (default 3)",
    )
    p.add_argument(
        "sentence", nargs="*", help="the lines to send (default: standard input's lines)"
    )
    p.set_defaults(func=cmd_client)
