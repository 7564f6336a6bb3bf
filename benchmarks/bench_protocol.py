"""Signed-message ping-pong between two processes: protocol layers side by side.

Each round trip: the client builds, signs and sends an ``execute_request`` on a DEALER
socket; the server process (ROUTER, as a kernel's shell) receives, verifies and parses
it, answers with a signed ``execute_reply`` whose parent is the request, and the
client verifies and parses that. Modes, all over tcp on 127.0.0.1 in the same run,
interleaved one round trip at a time so machine noise hits them alike:

- ``raw``: zmq frames echoed untouched (transport only, for reference)
- ``floor``: json + hmac by hand: the least work the protocol requires
- ``kernel_mgmt``: ``kernel_mgmt.protocol.Session`` on both sides
- ``jupyter_client``: ``jupyter_client.session.Session`` on both sides
- ``…+curve``: the same over a CurveZMQ-encrypted connection (the transport cost of
  encryption is the difference to the mode without it)

Target: kernel_mgmt ≤ 1.15 x floor (median). Run:
``.venv/bin/python benchmarks/bench_protocol.py [--n N] [--profile]``
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import zmq

CURVE = "+curve"
MODES = (
    "raw",
    "raw" + CURVE,
    "floor",
    "kernel_mgmt",
    "kernel_mgmt" + CURVE,
    "jupyter_client",
    "jupyter_client" + CURVE,
)
#: ``+curve`` modes: the server is a CURVE server with this pair, the client uses its public
#: key as server key (as a kernel and its clients do with the connection file's pair).
CURVE_SECRET = b"x" * 40  # any 40 Z85 characters are a Curve25519 secret key
DELIM = b"<IDS|MSG>"
KEY = b"a3f1" * 16  # 64 hex chars, like a connection file's key
CONTENT = {"code": "print('hello')", "silent": False, "store_history": True}
TARGET = 1.15


# -- the hand-rolled floor -----------------------------------------------------------------
class Floor:
    """Minimal correct protocol: json frames, HMAC-SHA256 over them, compare_digest."""

    def __init__(self, key: bytes) -> None:
        self.auth = hmac.new(key, digestmod=hashlib.sha256)
        self.session = uuid.uuid4().hex

    def _sign(self, parts: list[bytes]) -> bytes:
        h = self.auth.copy()
        for p in parts:
            h.update(p)
        return h.hexdigest().encode()

    def send(
        self, sock: zmq.Socket, msg_type: str, content: dict, parent: dict, idents: list
    ) -> None:
        header = {
            "msg_id": uuid.uuid4().hex,
            "msg_type": msg_type,
            "username": "bench",
            "session": self.session,
            "date": datetime.now(UTC).isoformat(),
            "version": "5.3",
        }
        parts = [json.dumps(x).encode() for x in (header, parent, {}, content)]
        sock.send_multipart([*idents, DELIM, self._sign(parts), *parts])

    def recv(self, sock: zmq.Socket) -> tuple[list[bytes], dict]:
        frames = sock.recv_multipart()
        i = frames.index(DELIM)
        parts = frames[i + 2 : i + 6]
        if not hmac.compare_digest(frames[i + 1], self._sign(parts)):
            raise ValueError("bad signature")
        header, parent, _metadata, content = (json.loads(p) for p in parts)
        return frames[:i], {"header": header, "parent_header": parent, "content": content}


# -- one server process per mode ------------------------------------------------------------
def serve(mode: str, port: int) -> None:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.linger = 0
    if mode.endswith(CURVE):
        mode = mode.removesuffix(CURVE)
        sock.curve_secretkey = CURVE_SECRET
        sock.curve_publickey = zmq.curve_public(CURVE_SECRET)
        sock.curve_server = True
    sock.bind(f"tcp://127.0.0.1:{port}")
    reply = {"status": "ok", "execution_count": 1, "user_expressions": {}}
    if mode == "raw":
        while True:
            frames = sock.recv_multipart()
            if frames[-1] == b"quit":
                return
            sock.send_multipart(frames)
    elif mode == "floor":
        floor = Floor(KEY)
        while True:
            idents, msg = floor.recv(sock)
            if msg["header"]["msg_type"] == "quit":
                return
            floor.send(sock, "execute_reply", reply, msg["header"], idents)
    elif mode == "kernel_mgmt":
        from kernel_mgmt.protocol import Session

        session = Session(KEY)
        while True:
            msg = session.recv(sock)
            if msg.msg_type == "quit":
                return
            session.send(sock, "execute_reply", reply, parent=msg, idents=msg.idents)
    elif mode == "jupyter_client":
        from jupyter_client.session import Session as JCSession

        session = JCSession(key=KEY)
        while True:
            idents, msg = session.recv(sock, mode=0)
            if msg["header"]["msg_type"] == "quit":
                return
            session.send(sock, "execute_reply", reply, parent=msg, ident=idents)


class Client:
    """The client side of one mode: ``ping()`` does one full round trip."""

    def __init__(self, mode: str, ctx: zmq.Context) -> None:
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.linger = 0
        self.port = self.sock.bind_to_random_port("tcp://127.0.0.1")
        self.sock.unbind(self.sock.last_endpoint)
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", mode, str(self.port)])
        if mode.endswith(CURVE):
            mode = mode.removesuffix(CURVE)
            public = zmq.curve_public(CURVE_SECRET)
            self.sock.curve_serverkey = public
            self.sock.curve_publickey, self.sock.curve_secretkey = zmq.curve_keypair()
        self.mode = mode
        self.sock.connect(f"tcp://127.0.0.1:{self.port}")
        if mode == "floor":
            self.floor = Floor(KEY)
        elif mode == "kernel_mgmt":
            from kernel_mgmt.protocol import Session

            self.session: Any = Session(KEY)
        elif mode == "jupyter_client":
            from jupyter_client.session import Session as JCSession

            self.session = JCSession(key=KEY)
        self.raw = [DELIM, b"0" * 64, *(json.dumps(x).encode() for x in ({}, {}, {}, CONTENT))]

    def ping(self) -> None:
        sock = self.sock
        if self.mode == "raw":
            sock.send_multipart(self.raw)
            sock.recv_multipart()
        elif self.mode == "floor":
            self.floor.send(sock, "execute_request", CONTENT, {}, [])
            self.floor.recv(sock)
        elif self.mode == "kernel_mgmt":
            self.session.send(sock, "execute_request", CONTENT)
            self.session.recv(sock)
        else:
            self.session.send(sock, "execute_request", CONTENT)
            self.session.recv(sock, mode=0)

    def close(self) -> None:
        if self.mode == "raw":
            self.sock.send_multipart([b"quit"])
        elif self.mode == "floor":
            self.floor.send(self.sock, "quit", {}, {}, [])
        else:
            self.session.send(self.sock, "quit", {})
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.sock.close()


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10000, help="round trips per mode")
    ap.add_argument("--profile", action="store_true", help="cProfile kernel_mgmt's client side")
    ap.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return 0

    ctx = zmq.Context()
    clients = {mode: Client(mode, ctx) for mode in MODES}
    times: dict[str, list[float]] = {mode: [] for mode in MODES}
    try:
        for c in clients.values():  # warm up: connections, imports, caches
            for _ in range(200):
                c.ping()
        # Interleave single round trips, rotating the order, so that every mode sees
        # the same machine load (5 builds share 2 cores here) at nearly the same moment.
        order = list(clients.items())
        for i in range(args.n):
            k = i % len(order)
            for mode, c in order[k:] + order[:k]:
                t0 = time.perf_counter_ns()
                c.ping()
                times[mode].append((time.perf_counter_ns() - t0) / 1000)
        if args.profile:
            import cProfile
            import pstats

            prof = cProfile.Profile()
            c = clients["kernel_mgmt"]
            prof.enable()
            for _ in range(5000):
                c.ping()
            prof.disable()
            pstats.Stats(prof).sort_stats("tottime").print_stats(15)
    finally:
        for c in clients.values():
            c.close()
        ctx.term()

    floor = statistics.median(times["floor"])
    print(
        f"signed ping-pong, 2 processes, tcp 127.0.0.1, {args.n} round trips per mode, interleaved"
    )
    print(f"{'mode':<22}{'median µs':>11}{'p99 µs':>10}{'x floor':>10}")
    for mode in MODES:
        med = statistics.median(times[mode])
        print(f"{mode:<22}{med:>11.1f}{pct(times[mode], 0.99):>10.1f}{med / floor:>10.2f}")
    ratio = statistics.median(times["kernel_mgmt"]) / floor
    verdict = "MET" if ratio <= TARGET else "MISSED"
    print(f"target: kernel_mgmt ≤ {TARGET:.2f} x floor → {ratio:.2f} ({verdict})")
    costs = ", ".join(
        f"{m} {statistics.median(times[m + CURVE]) - statistics.median(times[m]):+.1f} µs"
        for m in ("raw", "kernel_mgmt", "jupyter_client")
    )
    print(f"CurveZMQ cost per round trip (median, encrypted - plain): {costs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
