"""The guarded write's commands as they go on the wire, without a server: every EVALSHA a batch
becomes must be valid RESP carrying the script's arguments in the order the script reads them
(see `guarded_write.SCRIPT`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa

from airflow_provider_featurestore.core.config import Column
from airflow_provider_featurestore.core.online import OnlineLayout
from airflow_provider_featurestore.core.online.guarded_write import SHA, Call, pack_rows
from airflow_provider_featurestore.core.online.resp import bulk, bulk_bytes, slice_bytes

T0 = datetime(2024, 1, 1, tzinfo=UTC)
T0_US = 1_704_067_200_000_000
T0_S = T0_US // 1_000_000


def parse_commands(data: bytes) -> list[list[bytes]]:
    """RESP arrays of bulk strings (what a client sends) -> their arguments; all bytes consumed."""
    commands, at = [], 0
    while at < len(data):
        assert data[at : at + 1] == b"*", data[at : at + 20]
        end = data.index(b"\r\n", at)
        count, at = int(data[at + 1 : end]), end + 2
        args = []
        for _ in range(count):
            assert data[at : at + 1] == b"$", data[at : at + 20]
            end = data.index(b"\r\n", at)
            length, at = int(data[at + 1 : end]), end + 2
            args.append(data[at : at + length])
            assert data[at + length : at + length + 2] == b"\r\n"
            at += length + 2
        commands.append(args)
    return commands


def wire(call: Call) -> bytes:
    return b"".join(bytes(part) for part in call.packed.command(call.start, call.stop))


def layout_of(ttl: int | None = None) -> OnlineLayout:
    features = (Column("x", "double"), Column("s", "string"))
    return OnlineLayout("p:fs:v1:", (Column("id", "string"),), "event_ts", features, ttl)


def rows(ids: list[str], times: list[datetime], x: list[float | None], s: list[str | None]) -> pa.Table:
    return pa.table({"id": ids, "event_ts": pa.array(times, pa.timestamp("us", tz="UTC")), "x": x, "s": s})


def test_a_batch_is_one_evalsha_with_the_scripts_arguments() -> None:
    table = rows(["a:1", "b"], [T0, T0 + timedelta(microseconds=1)], [0.5, None], ["é", "t"])
    packed, expired = pack_rows(layout_of(), table, now=T0_S)
    assert packed is not None and expired == 0
    (command,) = parse_commands(wire(Call(packed, 0, 2)))
    assert command == [
        b"EVALSHA", SHA.encode(), b"2",
        b"p:fs:v1:a%3A1", b"p:fs:v1:b",  # KEYS
        b"2", b"x", b"s",  # nf and the field names
        str(T0_US).encode(), b"0", b"", b"0.5", "é".encode(),  # event time, no expiry, no nulls
        str(T0_US + 1).encode(), b"0", b"10", b"", b"t",  # x is null: mask "10", empty value
    ]  # fmt: skip


def test_ttl_gives_expire_at_and_leaves_out_expired_rows() -> None:
    stale, fresh = T0 - timedelta(seconds=3600), T0 - timedelta(seconds=60)
    table = rows(["stale", "fresh"], [stale, fresh], [1.0, 2.0], ["a", "b"])
    packed, expired = pack_rows(layout_of(ttl=3600), table, now=T0_S)  # stale expires exactly now
    assert packed is not None and expired == 1
    (command,) = parse_commands(wire(Call(packed, 0, 1)))
    assert command[3:] == [
        b"p:fs:v1:fresh", b"2", b"x", b"s",
        str(T0_US - 60_000_000).encode(), str(T0_S - 60 + 3600).encode(), b"", b"2", b"b",
    ]  # fmt: skip
    nothing, expired = pack_rows(layout_of(ttl=10), table, now=T0_S)
    assert nothing is None and expired == 2


def test_calls_over_parts_of_a_batch_carry_only_their_rows() -> None:
    n = 7
    table = rows([f"e{i}" for i in range(n)], [T0] * n, [float(i) for i in range(n)], ["v"] * n)
    packed, _ = pack_rows(layout_of(), table, now=T0_S)
    assert packed is not None
    commands = parse_commands(b"".join(wire(Call(packed, a, min(a + 3, n))) for a in range(0, n, 3)))
    assert [c[2] for c in commands] == [b"3", b"3", b"1"]
    keys = [key for c in commands for key in c[3 : 3 + int(c[2])]]
    assert keys == [f"p:fs:v1:e{i}".encode() for i in range(n)]
    assert commands[2][-5:] == [str(T0_US).encode(), b"0", b"", b"6", b"v"]


def test_bulk_strings_count_bytes_and_nulls_are_empty() -> None:
    assert bulk(pa.array(["é", None, "ab"])).to_pylist() == ["$2\r\né\r\n", "$0\r\n\r\n", "$2\r\nab\r\n"]
    assert bulk_bytes("東") == b"$3\r\n" + "東".encode() + b"\r\n"


def test_a_slice_of_a_sliced_array_is_its_own_bytes() -> None:
    array = pa.array(["aa", "b", "ccc", "dd"]).slice(1)  # an offset into the buffers
    assert bytes(slice_bytes(array, 1, 3)) == b"cccdd"
    assert bytes(slice_bytes(array, 0, 1)) == b"b"
