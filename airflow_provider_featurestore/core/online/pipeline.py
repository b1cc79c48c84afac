"""Script calls in flight: sent ahead on one connection per node, their replies read in order.

Sending a slice of a write before reading the replies of the previous one overlaps encoding
here with the scripts running in Redis. One connection per node keeps the rows of a write in
order on each node. A connection whose replies were not all read is closed, never handed back
to the pool as is. Calls refused for a reason a retry can cure (NOSCRIPT after a restart or a
SCRIPT FLUSH, a slot that moved) are kept for the caller to resend.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis
from redis import exceptions as rexc

from airflow_provider_featurestore.core.online.guarded_write import Call
from airflow_provider_featurestore.core.online.resp import checkout

RETRY_ERRORS = (rexc.NoScriptError, rexc.AskError, rexc.TryAgainError, rexc.ClusterDownError)


class ScriptPipeline:
    """The guarded write's calls in flight, and what their replies said."""

    def __init__(self, node_for: Callable[[Call], redis.Redis]) -> None:
        self.node_for = node_for  # the node a call goes to, its script loaded
        self.connections: dict[int, tuple[Any, Any]] = {}  # id(pool) -> (pool, connection)
        self.unread = 0
        self.written = self.older = 0
        self.failed: list[Call] = []
        self.error: Exception | None = None
        self.last_retry: Exception | None = None
        self.in_flight: list[tuple[Any, Call]] = []  # sent by the last step, replies unread

    def step(self, calls: list[Call]) -> None:
        """Send these calls, then read the replies of the previous step's: one step ahead."""
        sent = self.send(calls)
        self.read(self.in_flight)
        self.in_flight = sent

    def send(self, calls: list[Call]) -> list[tuple[Any, Call]]:
        sent = []
        for call in calls:
            pool = self.node_for(call).connection_pool
            if id(pool) not in self.connections:
                self.connections[id(pool)] = (pool, checkout(pool))
            connection = self.connections[id(pool)][1]
            connection.send_packed_command(call.packed.command(call.start, call.stop), check_health=False)
            self.unread += 1
            sent.append((connection, call))
        return sent

    def read(self, sent: list[tuple[Any, Call]]) -> None:
        for connection, call in sent:
            try:
                reply = connection.read_response()
            except RETRY_ERRORS as exc:
                self.failed.append(call)
                self.last_retry = exc
                continue
            except rexc.ResponseError as exc:
                self.error = self.error or exc
                continue
            finally:
                self.unread -= 1
            self.written += reply[0]
            self.older += reply[1]

    def close(self) -> None:
        for pool, connection in self.connections.values():
            if self.unread:
                connection.disconnect()
            pool.release(connection)
        self.connections.clear()
