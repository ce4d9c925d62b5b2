"""A real HTTP receiver on loopback for webhook tests: records every request and answers from a
script (e.g. 500 to the first two calls, then 200), in a thread of the test process."""

from __future__ import annotations

import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Answer:
    """One scripted answer: status, body, extra headers, and a delay before answering (timeouts)."""

    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None


class Receiver:
    """``with Receiver() as r: r.url`` — ``r.script(Answer(500), Answer(500))`` sets the first answers;
    later calls get ``r.default``. ``r.requests`` lists what arrived (including answered-late ones)."""

    def __init__(self, default: Answer | None = None, *, tls: tuple[str, str] | None = None) -> None:
        self.default = default or Answer()
        self.requests: list[Received] = []
        self._script: list[Answer] = []
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # the only method webhooks use
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver._cond:
                    receiver.requests.append(Received("POST", self.path, dict(self.headers.items()), body))
                    answer = receiver._script.pop(0) if receiver._script else receiver.default
                    receiver._cond.notify_all()
                if answer.delay:
                    time.sleep(answer.delay)
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): that is what the test wanted

            do_GET = do_POST

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.scheme = "http"
        if tls is not None:
            # (certificate file, key file): serve HTTPS, to test certificate checks on the vetted IP.
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            self.scheme = "https"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/hooks"

    def url_for(self, host: str) -> str:
        return f"{self.scheme}://{host}:{self.port}/hooks"

    def script(self, *answers: Answer) -> None:
        with self._cond:
            self._script = list(answers)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Wait until at least ``count`` requests arrived; return them all."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.requests) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{len(self.requests)} request(s) received, {count} expected")
                self._cond.wait(remaining)
            return list(self.requests)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
