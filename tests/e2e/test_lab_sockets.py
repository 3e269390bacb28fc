"""`mailstack lab uppercase-server` and `uppercase-client` as a learner runs
them: UDP and TCP, several clients at once, the UDP client's retries, the TCP
server's connection sockets, and `--trace` showing the socket calls."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

CLIENTS = 6


def lab(*args: str) -> list[str]:
    return [sys.executable, "-m", "mailstack.cli", "lab", *args]


@contextmanager
def server(*args: str) -> Iterator[tuple[int, list[str]]]:
    """A running uppercase server on an OS-chosen loopback port; the list
    gets its whole output once it has stopped."""
    proc = subprocess.Popen(
        lab("uppercase-server", "--port", "0", *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    output: list[str] = []
    port = 0
    for line in proc.stdout:
        output.append(line)
        if found := re.search(r"listening on 127\.0\.0\.1:(\d+)", line):
            port = int(found.group(1))
            break
    assert port, "".join(output)
    try:
        yield port, output
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=30)
        output.append(rest)
        assert proc.returncode == 0, "".join(output)
        assert "Traceback" not in "".join(output)


def client(port: int, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        lab("uppercase-client", "--server", f"127.0.0.1:{port}", *args),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def clients_at_once(port: int, transport: str) -> None:
    """CLIENTS client processes started together, each with its own lines."""
    procs = [
        subprocess.Popen(
            lab("uppercase-client", transport, "--server", f"127.0.0.1:{port}", "--timeout", "5"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(CLIENTS)
    ]
    for n, proc in enumerate(procs):
        out, err = proc.communicate(f"client {n} says hello\nand goodbye ß\n", timeout=60)
        assert proc.returncode == 0, err
        assert out == f"CLIENT {n} SAYS HELLO\nAND GOODBYE SS\n"


@pytest.mark.timeout(90)
@pytest.mark.parametrize("transport", ["--udp", "--tcp"])
def test_several_clients_at_once(transport):
    with server(transport) as (port, _):
        clients_at_once(port, transport)


@pytest.mark.timeout(60)
def test_tcp_gives_each_client_its_own_connection_socket_at_once():
    with server("--tcp") as (port, _):
        conns = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(3)]
        try:
            # The last client is answered while the first two still hold
            # their connections: an iterative server would never get to it.
            for n, conn in reversed(list(enumerate(conns))):
                conn.sendall(b"hello %d\n" % n)
                assert conn.recv(100) == b"HELLO %d\n" % n
        finally:
            for conn in conns:
                conn.close()


@pytest.mark.timeout(60)
def test_tcp_clients_past_max_clients_wait_their_turn():
    with server("--tcp", "--max-clients", "2") as (port, _):
        first, second, third = (
            socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(3)
        )
        for conn in (first, second):
            conn.sendall(b"a\n")
            assert conn.recv(10) == b"A\n"
        third.sendall(b"c\n")
        third.settimeout(0.5)
        with pytest.raises(TimeoutError):
            third.recv(10)  # waiting in the listen queue
        first.close()
        third.settimeout(10)
        assert third.recv(10) == b"C\n"
        second.close()
        third.close()


@pytest.mark.timeout(60)
def test_tcp_trace_shows_the_welcoming_and_the_connection_sockets():
    with server("--tcp", "--trace") as (port, output):
        for n in range(2):
            done = client(port, "--tcp", "--trace", f"line {n}")
            assert done.returncode == 0 and done.stdout == f"LINE {n}\n"
    calls = re.findall(r"\[tcp client\] -- (\w+)\(", done.stderr)
    assert calls == ["socket", "settimeout", "connect", "send", "recv", "close"]
    assert "[tcp client] C: line 1\n" in done.stderr and "[tcp client] S: LINE 1\n" in done.stderr
    text = "".join(output)
    welcoming = re.findall(r"\[tcp welcoming\] -- (\w+)\(", text)
    assert welcoming == ["socket", "bind", "listen", "accept", "accept", "close"]
    fd = re.search(r"\[tcp welcoming\] -- socket\(AF_INET, SOCK_STREAM\) = fd (\d+)", text)
    assert fd is not None
    accepted = re.findall(r"accept\(\) = fd (\d+), a new connection socket", text)
    assert len(accepted) == 2 and fd.group(1) not in accepted
    for session in ("tcp 1", "tcp 2"):
        calls = re.findall(rf"\[{session}\] -- (\w+)\(", text)
        assert calls == ["settimeout", "recv", "send", "recv", "close"], text
    # The welcoming socket closes last, when the server stops.
    assert text.rstrip().splitlines()[-2].startswith("[tcp welcoming] -- close() fd ")


@pytest.mark.timeout(60)
def test_udp_trace_shows_one_socket_and_no_connection():
    with server("--udp", "--trace") as (port, output):
        done = client(port, "--udp", "--trace", stdin="hello\nworld\n")
        assert done.returncode == 0 and done.stdout == "HELLO\nWORLD\n"
    calls = re.findall(r"\[udp client\] -- (\w+)\(", done.stderr)
    assert calls == ["socket", "settimeout", "sendto", "recvfrom", "sendto", "recvfrom", "close"]
    text = "".join(output)
    calls = re.findall(r"\[udp server\] -- (\w+)\(", text)
    assert calls == ["socket", "bind", "recvfrom", "sendto", "recvfrom", "sendto", "close"]
    assert "listen(" not in text and "accept(" not in text


@contextmanager
def lossy_server(drop: int) -> Iterator[int]:
    """A UDP socket of the test's own that ignores the first ``drop``
    datagrams, then answers in uppercase: a network that loses packets."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(20)

    def serve() -> None:
        seen = 0
        try:
            while True:
                data, peer = sock.recvfrom(2048)
                seen += 1
                if seen > drop:
                    sock.sendto(data.upper(), peer)
        except OSError:
            return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()
        thread.join(timeout=5)


@pytest.mark.timeout(60)
def test_udp_client_sends_again_when_the_answer_does_not_come():
    with lossy_server(drop=2) as port:
        done = client(port, "--udp", "--trace", "--timeout", "0.3", "--tries", "3", "lost twice")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "LOST TWICE\n"
    assert done.stderr.count("sendto(b'lost twice'") == 3
    assert done.stderr.count("no answer within 0.3 s") == 2


@pytest.mark.timeout(60)
def test_udp_client_gives_up_after_its_tries():
    with lossy_server(drop=100) as port:
        done = client(port, "--udp", "--timeout", "0.2", "--tries", "2", "one", "two")
    assert done.returncode == 1
    assert done.stdout == ""
    assert f"line 1: no answer from 127.0.0.1:{port} after 2 tries of 0.2 s" in done.stderr
    assert "line 2: no answer" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.timeout(60)
def test_tcp_line_past_max_line_is_refused_not_a_crash():
    with server("--tcp", "--max-line", "100") as (port, _):
        done = client(port, "--tcp", "x" * 500)
        assert done.returncode == 0
        assert done.stdout == "line too long (at most 100 bytes)\n"
        assert client(port, "--tcp", "still serving").stdout == "STILL SERVING\n"


@pytest.mark.timeout(60)
def test_bad_input_is_a_clear_error():
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()  # nothing listens there now
    done = client(port, "--tcp", "hi")
    assert done.returncode == 1
    assert f"cannot connect to 127.0.0.1:{port}: Connection refused" in done.stderr
    for args, message in [
        (["--server", "nowhere"], "expected HOST:PORT"),
        (["--server", "127.0.0.1:99999"], "expected HOST:PORT"),
        (["--timeout", "-1"], "expected more than 0"),
    ]:
        done = subprocess.run(
            lab("uppercase-client", "--udp", *args, "hi"),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode in (1, 2) and message in done.stderr
        assert "Traceback" not in done.stderr
    done = subprocess.run(
        lab("uppercase-server", "--tcp", "--port", "70000"), capture_output=True, text=True
    )
    assert done.returncode == 2 and "expected a port from 0 to 65535" in done.stderr
    done = subprocess.run(lab("uppercase-server"), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "one of the arguments --udp --tcp is required" in done.stderr
    with server("--tcp") as (port, _):
        done = subprocess.run(
            lab("uppercase-server", "--tcp", "--port", str(port)),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 1
        assert f"cannot serve on 127.0.0.1:{port}: Address already in use" in done.stderr
