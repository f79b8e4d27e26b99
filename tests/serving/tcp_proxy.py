"""A TCP proxy in front of a store, which a test cuts (every connection closed, new ones refused) and
restores, or has drop a connection at a chosen statement: a store going away that the test cannot stop."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

CHUNK = 65536


@dataclass
class _Pair:
    """One client connection and its connection to the store."""

    client: socket.socket
    upstream: socket.socket
    drop_replies: bool = False  # set once a statement the proxy drops after was forwarded

    def close(self) -> None:
        for sock in (self.client, self.upstream):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


@dataclass
class TcpProxy:
    """Forwards 127.0.0.1:`port` to `target`. `cut()` closes every connection and refuses new ones (the
    port stops listening) until `restore()`; `drop_at(text)` closes the next connection whose client
    sends `text`, either before forwarding it or, with `after=True`, once forwarded (its reply never
    reaches the client: a COMMIT the store made and the client never heard of)."""

    target: tuple[str, int]
    port: int = 0
    _pairs: list[_Pair] = field(default_factory=list)
    _listener: socket.socket | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _drop: tuple[bytes, bool, bool] | None = None
    dropped: int = 0
    _cut_on_drop: bool = False

    def start(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True, name="proxy-accept").start()
        return self

    def cut(self) -> None:
        """The store gone: the listener closed (a connect is refused) and every open connection closed."""
        with self._lock:
            listener, self._listener = self._listener, None
            pairs, self._pairs = self._pairs, []
        if listener is not None:
            # Shut down first: a close alone leaves the port listening while accept() waits on it.
            with suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for pair in pairs:
            pair.close()

    def restore(self) -> None:
        """The store back on the same port."""
        self.start()

    def drop_at(self, text: bytes, after: bool = False, then_cut: bool = False) -> None:
        """Close the next connection whose client sends `text` (once); `then_cut` cuts the proxy with it."""
        self._drop = (text, after, then_cut)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed by cut()
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            pair = _Pair(client, upstream)
            with self._lock:
                if self._listener is not listener:
                    pair.close()
                    return
                self._pairs.append(pair)
            threading.Thread(target=self._requests, args=(pair,), daemon=True).start()
            threading.Thread(target=self._replies, args=(pair,), daemon=True).start()

    def _requests(self, pair: _Pair) -> None:
        while data := _receive(pair.client):
            drop = self._take_drop(data)
            if drop is False:  # dropped before the store saw it
                if self._cut_on_drop:
                    self.cut()
                break
            if drop is True:  # the store answers it; _replies drops the answer and the connection
                pair.drop_replies = True
            if not _send(pair.upstream, data):
                break
        pair.close()

    def _take_drop(self, data: bytes) -> bool | None:
        """None: forward `data` as usual; else whether its reply (True) or itself (False) is dropped."""
        with self._lock:
            drop = self._drop
            if drop is None or drop[0] not in data:
                return None
            self._drop = None
            self.dropped += 1
            self._cut_on_drop = drop[2]
            return drop[1]

    def _replies(self, pair: _Pair) -> None:
        while (data := _receive(pair.upstream)) and not pair.drop_replies:
            if not _send(pair.client, data):
                break
        if pair.drop_replies and self._cut_on_drop:
            self.cut()
        pair.close()


def _receive(sock: socket.socket) -> bytes:
    try:
        return sock.recv(CHUNK)
    except OSError:
        return b""


def _send(sock: socket.socket, data: bytes) -> bool:
    try:
        sock.sendall(data)
    except OSError:
        return False
    return True


@contextmanager
def proxy_to(host: str, port: int) -> Iterator[TcpProxy]:
    """A started proxy to host:port, stopped afterwards."""
    proxy = TcpProxy((host, port)).start()
    try:
        yield proxy
    finally:
        proxy.cut()
