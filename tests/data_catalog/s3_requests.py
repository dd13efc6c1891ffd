"""Counting the requests an S3 data root costs: moto's server on loopback, each request it answers tallied by
operation (HEAD, GET, LIST, PUT, DELETE, POST) and kept with its key, for the request tests and
``tests/benchmarks/bench_scale.py``."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable
from urllib.parse import parse_qs, unquote

from moto.server import ThreadedMotoServer

__all__ = ["CountingMotoServer", "Tally", "operation"]


def operation(method: str, path: str, query: str) -> str:
    """The S3 operation of a request: its method, but a GET of a bucket (a listing) is LIST."""
    if method == "GET" and ("list-type" in parse_qs(query, keep_blank_values=True)
                            or len(path.strip("/").split("/", 1)) == 1):
        return "LIST"
    return method


class Tally:
    """The requests answered in a span: ``ops`` by operation, ``keys`` in order (operation, key; a listing's
    key is the bucket and the prefix listed)."""

    def __init__(self, log: Iterable[tuple[str, str]]):
        self.keys = list(log)
        self.ops = Counter(op for op, _ in self.keys)

    @property
    def total(self) -> int:
        return len(self.keys)

    def where(self, keep: Callable[[str], bool]) -> Tally:
        """The requests whose key passes ``keep``."""
        return Tally((op, key) for op, key in self.keys if keep(key))

    def __truediv__(self, n: float) -> dict[str, float]:
        return {op: count / n for op, count in sorted(self.ops.items())} | {"total": self.total / n}

    def __str__(self) -> str:
        return f"{self.total} ({', '.join(f'{op} {n}' for op, n in sorted(self.ops.items()))})"


class CountingMotoServer(ThreadedMotoServer):
    """``ThreadedMotoServer`` that logs every request it answers: ``mark()`` then ``since(mark)`` is a
    :class:`Tally` of what came in between (from any process: the count is the server's)."""

    def __init__(self, ip_address: str = "127.0.0.1", port: int = 0):
        import logging

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request otherwise
        super().__init__(ip_address=ip_address, port=port, verbose=False)
        self.log: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def _server_entry(self) -> None:  # ThreadedMotoServer's, moto's app wrapped to log each request first
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        app = DomainDispatcherApplication(create_backend_app)

        def counted(environ, start_response):
            path, query = unquote(environ.get("PATH_INFO", "")), environ.get("QUERY_STRING", "")
            op = operation(environ["REQUEST_METHOD"], path, query)
            if op == "LIST":  # the bucket, then the prefix listed
                path = f"{path.rstrip('/')}/{parse_qs(query).get('prefix', [''])[0]}"
            with self._lock:
                self.log.append((op, path))
            return app(environ, start_response)

        self._server = make_server(self._ip_address, self._port, counted, True, request_handler=MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()

    @property
    def url(self) -> str:
        host, port = self.get_host_and_port()
        return f"http://{host}:{port}"

    def mark(self) -> int:
        with self._lock:
            return len(self.log)

    def since(self, mark: int = 0) -> Tally:
        with self._lock:
            return Tally(self.log[mark:])
