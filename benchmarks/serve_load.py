"""The load generator of `serve_vs_feast.py`: `loadgen/main.go` (Go, standard library only),
built on first use into `benchmarks/.loadgen/` (gitignored) and rebuilt when its source
changes; Go itself is installed from Debian's packages (`golang-go`) when missing.

Why Go, not Python: on two cores a Python asyncio client tops out near the server's own rate and
takes its CPU. The Go generator uses ~10-20 us of CPU per request (measured per run and
printed), and its open loop measures latency from each request's intended send time, so a
stalled server is charged for the requests queued behind the stall (no coordinated omission).

`run` starts one load and returns every request's record and every distinct answer; `figures`
turns them into throughput and percentiles once the answers are checked.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

BENCH = Path(__file__).resolve().parent
SOURCE = BENCH / "loadgen"
BINARY = BENCH / ".loadgen" / "loadgen"
RECORD = np.dtype([("offset", "<i8"), ("latency", "<i8"), ("status", "<i4"), ("resp", "<i4")])
POINTS = (50.0, 99.0, 99.9)


def ensure_loadgen() -> Path:
    """The built generator, (re)built with the local Go toolchain when missing or older than its
    source; Go installed with apt-get when it is not on the PATH (as root)."""
    sources = [SOURCE / "main.go", SOURCE / "go.mod"]
    if BINARY.exists() and all(BINARY.stat().st_mtime >= path.stat().st_mtime for path in sources):
        return BINARY
    go = shutil.which("go") or _install_go()
    BINARY.parent.mkdir(exist_ok=True)
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"}
    print(f"building the load generator: {go} build -o {BINARY} ({SOURCE})", flush=True)
    done = subprocess.run(
        [go, "build", "-o", str(BINARY), "."], cwd=SOURCE, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"building {SOURCE} failed (exit {done.returncode}):\n{done.stderr}")
    return BINARY


def _install_go() -> str:
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SystemExit("Go is needed to build the load generator: install it (apt-get install golang-go)")
    print("go not found: installing golang-go from Debian's packages", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "golang-go"], env=env, capture_output=True)
    go = shutil.which("go") or ("/usr/lib/go/bin/go" if os.path.exists("/usr/lib/go/bin/go") else None)
    if go is None:
        raise SystemExit("apt-get install golang-go did not give a `go`: install Go and run again")
    return go


@dataclass
class Load:
    """What one load run saw: per request (RECORD), every distinct answer (body index, bytes),
    the generator's own summary (its CPU, the lateness of its sends)."""

    records: np.ndarray
    answers: list[tuple[int, bytes]]
    summary: dict[str, Any]
    start_ns: int = 0  # the generator's start, time.time_ns() scale

    @property
    def end_s(self) -> float:
        """Seconds from the start to the last answer (or give-up)."""
        if not len(self.records):
            return 0.0
        return float((self.records["offset"] + self.records["latency"]).max()) / 1e9


def run(
    url: str,
    bodies: Path,
    headers: Sequence[str],
    *,
    mode: str,
    clients: int,
    duration: float,
    out: Path,
    rate: float = 0.0,
    timeout: float = 10.0,
    offset: int = 0,
) -> Load:
    """One load of `duration` seconds against `url` (see loadgen/main.go for the modes)."""
    process = start(
        url, bodies, headers, mode=mode, clients=clients, duration=duration, out=out, rate=rate,
        timeout=timeout, offset=offset,
    )  # fmt: skip
    return finish(process, out)


def start(
    url: str,
    bodies: Path,
    headers: Sequence[str],
    *,
    mode: str,
    clients: int,
    duration: float,
    out: Path,
    rate: float = 0.0,
    timeout: float = 10.0,
    offset: int = 0,
) -> subprocess.Popen[str]:
    """The generator started in the background (`finish` collects it)."""
    command = [str(BINARY), "-url", url, "-bodies", str(bodies), "-mode", mode, "-clients", str(clients)]
    command += ["-duration", f"{duration}s", "-timeout", f"{timeout}s", "-offset", str(offset)]
    command += ["-out", str(out), *(f"-header={h}" for h in headers)]
    if mode == "open":
        command += ["-rate", f"{rate}"]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen[str], out: Path) -> Load:
    stdout, stderr = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"the load generator failed (exit {process.returncode}): {stderr.strip()}")
    summary = json.loads(stdout.strip().splitlines()[-1])
    records = np.fromfile(f"{out}.req", dtype=RECORD)
    return Load(records, read_answers(Path(f"{out}.resp")), summary, int(summary.get("start_unix_ns", 0)))


def read_answers(path: Path) -> list[tuple[int, bytes]]:
    data = path.read_bytes()
    answers, at = [], 0
    while at < len(data):
        body, length = struct.unpack_from("<II", data, at)
        at += 8
        answers.append((body, data[at : at + length]))
        at += length
    return answers


def percentiles_ms(latency_ns: np.ndarray, points: Sequence[float] = POINTS) -> list[float]:
    """Percentiles (linear interpolation) in ms; NaN for none."""
    if not len(latency_ns):
        return [float("nan")] * len(points)
    return [float(v) / 1e6 for v in np.percentile(latency_ns, points)]


@dataclass
class Figures:
    """One case's figures for one server."""

    requests: int
    ok: int
    errors: dict[str, int]
    throughput: float  # correct answers per second, start to last answer
    p50: float
    p99: float
    p999: float
    max_ms: float
    generator_cpu: float  # the generator's CPU seconds
    seconds: float
    server_cpu: float = 0.0
    redis_cpu: float = 0.0
    newer: int = 0  # entities answered from a backfill's newer rows
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def figures(
    load: Load,
    good: np.ndarray,
    kinds: Sequence[str],
    window: tuple[float, float] | None = None,
    newer: np.ndarray | None = None,
) -> Figures:
    """Figures of `load` given the verdict of each distinct answer (`good[i]`: answer i was
    right; `kinds[i]` its problem otherwise; `newer[i]` its entities from newer rows); `window`
    (seconds from the start) keeps only the requests due in it. Latency percentiles are over
    every request that was answered."""
    records = load.records
    if window is not None:
        due = records["offset"] / 1e9
        records = records[(due >= window[0]) & (due < window[1])]
    status, resp = records["status"], records["resp"]
    answered = status > 0
    right = (
        answered & (status == 200) & (resp >= 0) & good[np.maximum(resp, 0)]
        if len(good)
        else answered & False
    )
    errors: dict[str, int] = {}
    for name, count in (
        ("timeout", int((status == -1).sum())),
        ("transport", int((status == 0).sum())),
        ("non-200", int((answered & (status != 200)).sum())),
    ):
        if count:
            errors[name] = count
    for index in np.unique(resp[answered & (status == 200) & ~right]):
        errors[kinds[index]] = errors.get(kinds[index], 0) + int(((resp == index) & (status == 200)).sum())
    seconds = window[1] - window[0] if window else load.end_s
    latency = records["latency"][answered]
    p50, p99, p999 = percentiles_ms(latency)
    return Figures(
        requests=len(records),
        ok=int(right.sum()),
        errors=errors,
        throughput=int(right.sum()) / seconds if seconds else 0.0,
        p50=p50,
        p99=p99,
        p999=p999,
        max_ms=float(latency.max()) / 1e6 if len(latency) else float("nan"),
        generator_cpu=float(load.summary["cpu_s"]),
        seconds=seconds,
        newer=int(newer[resp[right]].sum()) if newer is not None and len(newer) else 0,
    )
