"""The feature server's HTTP/1.1 connection protocol: uvicorn's httptools protocol with a bound
on how long and how large a request's head (request line and headers) may be.

uvicorn waits for a request head forever and llhttp accepts headers of any size, so one client
sending a header byte a second (or an endless header) holds a connection and its memory for as
long as it likes. Here a head must arrive whole within `header_timeout` seconds of the
connection opening, or of its first byte on a kept-alive connection, and stay under
`max_header_bytes`; otherwise the connection is answered 408 or 431 and closed. The body has
limits of its own, in the app (serving.py), where its size and read time are known.

uvicorn makes one protocol object per connection from the class it is given, passing only its
own Config, so the limits are class attributes, set by `configure` in the serving process.

Core-level: uvicorn and httptools only.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEADER_TIMEOUT = 10.0  # seconds
MAX_HEADER_BYTES = 64 * 1024


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol whose request heads are bounded in time and size."""

    header_timeout: float = HEADER_TIMEOUT
    max_header_bytes: int = MAX_HEADER_BYTES

    _head_timer: asyncio.TimerHandle | None = None
    _head_bytes = 0
    _in_head = False
    _refused = False  # answered 408/431: the rest of what the parser was fed is ignored

    @classmethod
    def configure(cls, *, header_timeout: float, max_header_bytes: int = MAX_HEADER_BYTES) -> None:
        cls.header_timeout, cls.max_header_bytes = header_timeout, max_header_bytes

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        if self._refused:
            return
        super().on_message_begin()
        self._in_head, self._head_bytes = True, 0
        if self._head_timer is None:  # a kept-alive connection's next request starts its clock
            self._arm()

    def on_url(self, url: bytes) -> None:
        if self._within_head_limit(len(url)):
            super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._within_head_limit(len(name) + len(value) + 4):
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        self._in_head = False
        self._disarm()
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._refused:
            super().on_message_complete()

    def _within_head_limit(self, size: int) -> bool:
        if self._refused:
            return False
        self._head_bytes += size
        if self._head_bytes > self.max_header_bytes:
            self._refuse(431, "Request Header Fields Too Large")
            return False
        return True

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self._in_head:
            self._refuse(408, "Request Timeout")
        elif self.cycle is None or self.cycle.response_complete:
            self.transport.close()  # opened and never sent a byte

    def _refuse(self, status: int, reason: str) -> None:
        """Answer and close; what the parser still holds of this connection is ignored."""
        self._refused = True
        self._disarm()
        body = f'{{"detail":"request head: {reason.lower()}"}}'.encode()
        self.transport.write(
            f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
            + body
        )
        self.transport.close()
