"""The feature server's HTTP/1.1 connection protocol: uvicorn's httptools protocol with bounds
on how long a request's head may take and how many bytes may pile up outside a body.

uvicorn waits for a request head forever, and httptools buffers a header value in memory until
the header ends, so one client dripping a header byte a second, or sending one endless header
(or endless chunked trailers), holds a connection and as much memory as it likes. Here:

- a head (request line and headers) must arrive whole within `header_timeout` seconds of the
  connection opening, or of the previous response's end on a kept-alive connection: else 408
  and close (a connection that sends no request in that time is closed);
- a head's target and headers may hold at most `max_header_bytes`, and at most that many bytes
  may arrive without the parser making progress (headers complete, body bytes, message
  complete): else 431 and close (only close when the app already has the request, as for
  endless trailers). Bytes are counted as they arrive, before httptools has anything to hand
  over, which is where the memory goes: at most `max_header_bytes` and one read (256 KiB);
- trailers are dropped (uvicorn would append them to the headers the app already read);
- a response sent before the request body was all received closes the connection, so a body
  nobody reads (a 401, a 413, a 404 with a body) is never drained from a slow client;
- a connection closed while the client may still be sending is closed lingering: the answer
  and a FIN go out, and what still arrives is discarded (at most LINGER_BYTES, LINGER_SECONDS)
  before the socket closes. Closing at once would make the kernel answer the unread upload with
  a reset, which destroys the 408/413/431 the client has not read yet.

- a Transfer-Encoding other than plain `chunked` (`gzip, chunked`) is answered 501 and the
  connection closed (RFC 9112 6.1): httptools would decode the chunks and hand the app a body
  still gzipped, as if it were plain.

The body's own size and read time are limited in the app (server.py), where they are known.

Why a subclass of uvicorn's private `HttpToolsProtocol` rather than a public extension point
(checked against uvicorn 0.55):

- `timeout_keep_alive` runs only between requests and is reset by every byte received, so a
  head dripped a byte at a time (or blank lines after a response) never trips it; it does not
  run at all while a head is half received.
- `h11_max_incomplete_event_size` bounds the bytes of an unfinished head, but only with the h11
  protocol (`http="h11"`), which has no head timeout either and is pure Python (slower per
  request than httptools); httptools has no size option at all.
- `limit_concurrency` counts connections and tasks, not what one connection may hold; a
  thousand slow heads fill it.
- an ASGI middleware sees a request only once its head is complete: it cannot bound how long or
  how large the head grows, see trailers (uvicorn appends them to the headers), close lingering
  after a refusal, nor refuse a transfer coding before httptools has decoded the chunks.

So the subclass stays; it overrides uvicorn's parser callbacks and calls each one's original.

uvicorn makes one protocol object per connection from the class it is given, passing only its
own Config, and pickles that class by name into `--workers` processes; so the limits are class
attributes, set by `configure` in each serving process before it accepts connections.

Core-level: uvicorn and httptools only.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEADER_TIMEOUT = 10.0  # seconds
MAX_HEADER_BYTES = 64 * 1024
LINGER_SECONDS = 2.0  # a refused client's upload is discarded this long at most ...
LINGER_BYTES = 16 * 1024 * 1024  # ... and this much at most, before the socket closes


def _transfer_codings(headers: list[tuple[bytes, bytes]]) -> list[bytes] | None:
    """The transfer codings a head lists, across its Transfer-Encoding headers, in lower case;
    None without one. RFC 9112 6.1: a server answers a coding it does not implement with 501."""
    values = [value for name, value in headers if name == b"transfer-encoding"]
    if not values:
        return None
    return [coding.strip().lower() for value in values for coding in value.split(b",") if coding.strip()]


class _LingeringTransport:
    """The connection's transport as uvicorn sees it: `close` lingers while the client may
    still be sending (its protocol decides); everything else is the real transport's.

    Writes made in one turn of the event loop go out as one: uvicorn writes a response's head
    and its body separately, two `send` system calls for a small answer, about a tenth of a
    1-entity lookup's CPU (a py-spy profile under load); they are joined and written when the
    turn ends (`call_soon`), or at once before a close."""

    def __init__(self, transport: asyncio.Transport, protocol: GuardedHttpToolsProtocol) -> None:
        self._transport, self._protocol = transport, protocol
        self._held: list[bytes] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def close(self) -> None:
        self.flush()
        if not self._protocol._linger():
            self._transport.close()

    def is_closing(self) -> bool:
        return self._protocol._lingering or self._transport.is_closing()

    def write(self, data: bytes) -> None:
        if self._protocol._lingering:  # after the FIN nothing more can be said
            return
        if self._held is None:
            self._held = [data]
            self._protocol.loop.call_soon(self.flush)
        else:
            self._held.append(data)

    def flush(self) -> None:
        """Write what this turn of the loop held back (nothing after the FIN or a close)."""
        held, self._held = self._held, None
        if held and not self._protocol._lingering and not self._transport.is_closing():
            self._transport.write(held[0] if len(held) == 1 else b"".join(held))


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol whose request heads and trailers are bounded in time and size, and
    whose unread bodies are never drained."""

    header_timeout: float = HEADER_TIMEOUT
    max_header_bytes: int = MAX_HEADER_BYTES

    _head_timer: asyncio.TimerHandle | None = None
    _in_head = False  # between a message's first byte and its headers' end
    _in_message = False  # between a message's first byte and its end
    _progress = False  # the parser handed something over during the current data_received
    _stalled_bytes = 0  # bytes received since the parser last handed something over
    _head_size = 0  # bytes of the current head's target and headers
    _refused = False  # answered 408/431 or closed: what the parser still holds is ignored
    _lingering = False  # closed but for discarding what the client still sends
    _linger_left = 0
    _linger_timer: asyncio.TimerHandle | None = None

    @classmethod
    def configure(cls, *, header_timeout: float, max_header_bytes: int = MAX_HEADER_BYTES) -> None:
        """Set the limits of every connection this process accepts from now on."""
        cls.header_timeout, cls.max_header_bytes = header_timeout, max_header_bytes

    # ---- connection -----------------------------------------------------------------------

    # uvicorn declares `transport: asyncio.Transport` (narrower than BaseProtocol's), and the
    # lingering wrapper duck-types a Transport without subclassing it.
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # uvicorn's narrower type
        super().connection_made(_LingeringTransport(transport, self))  # type: ignore[arg-type]  # duck-typed Transport
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._in_message = False  # nothing more can arrive: a close is a close
        if self._linger_timer is not None:
            self._linger_timer.cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            self._linger_left -= len(data)
            if self._linger_left <= 0:
                self._transport().close()
            return
        if self._refused:
            return
        self._progress = False
        super().data_received(data)
        if self._refused or self.transport.is_closing():
            return
        if self._progress or not self._in_message:
            self._stalled_bytes = 0
            return
        self._stalled_bytes += len(data)
        if self._stalled_bytes > self.max_header_bytes:
            self._refuse_large_head()

    def on_response_complete(self) -> None:
        if self.cycle is not None and self.cycle.more_body and not self.transport.is_closing():
            self.transport.close()  # the rest of the body would be drained for nothing
        super().on_response_complete()
        if not self.transport.is_closing():
            # the next head's clock: bytes that start no request (a drip of blank lines) would
            # otherwise keep resetting uvicorn's keep-alive timer forever
            self._arm()

    # ---- parser callbacks -----------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._refused:
            return
        super().on_message_begin()
        self._in_head = self._in_message = self._progress = True
        self._head_size = 0
        if self._head_timer is None:  # a pipelined request: its clock starts here
            self._arm()

    def on_url(self, url: bytes) -> None:
        if not self._refused:
            self._head_size += len(url)
            super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._in_head and not self._refused:  # after the head: a trailer, dropped
            self._head_size += len(name) + len(value) + 4
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        if self._head_size > self.max_header_bytes:  # arrived in one read: as refused as in many
            self._refuse_large_head()
            return
        codings = _transfer_codings(self.headers)
        if codings is not None and codings != [b"chunked"]:
            shown = ", ".join(coding.decode("latin-1") for coding in codings)
            self._refuse(
                501, "Not Implemented", f"Transfer-Encoding {shown[:80]}: only chunked is implemented"
            )
            return
        self._in_head, self._progress = False, True
        self._disarm()
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            self._progress = True
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._refused:
            self._in_message, self._progress = False, True
            super().on_message_complete()

    # ---- limits ---------------------------------------------------------------------------

    def _transport(self) -> asyncio.Transport:
        """The real transport under the lingering one uvicorn holds."""
        return self.transport._transport  # type: ignore[attr-defined]  # the wrapper's own attribute

    def _linger(self) -> bool:
        """Close lingering when the client may still be sending (in a message); False when a
        plain close will do."""
        real = self._transport()
        if self._lingering:
            return True
        if not self._in_message or real.is_closing() or not real.can_write_eof():
            return False
        self._lingering = self._refused = True
        self._disarm()
        real.write_eof()  # the answer already written, then a FIN
        real.resume_reading()  # uvicorn may have paused it (a full body buffer)
        self._linger_left = LINGER_BYTES
        self._linger_timer = self.loop.call_later(LINGER_SECONDS, real.close)
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
            self._refuse(408, "Request Timeout", f"not received within {self.header_timeout:g} s")
        elif self.cycle is None or self.cycle.response_complete:
            self.transport.close()  # opened and never sent a byte

    def _refuse_large_head(self) -> None:
        self._refuse(431, "Request Header Fields Too Large", f"more than {self.max_header_bytes:,} bytes")

    def _refuse(self, status: int, reason: str, detail: str) -> None:
        """Answer `status` and close; only close when a response of the app's may be under
        way on this connection (two responses would interleave)."""
        self._refused = True
        self._disarm()
        if self._in_head and (self.cycle is None or self.cycle.response_complete):
            body = json.dumps({"detail": f"request head: {detail}"}).encode()
            self.transport.write(
                f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
                f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
                + body
            )
        self.transport.close()
