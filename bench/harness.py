"""The pieces the HTTP benchmarks share: the fast upstream, the request, wrk, CPU accounting, processes.

``bench/http_path.py`` and ``bench/servers.py`` measure different servers with exactly these: the
same nginx (or small uvloop) upstream returning a fixed ~1 KB JSON body, the same JWT-authenticated
GraphQL POST sent by ``wrk -t2`` through a Lua script that prints the percentiles, and the same CPU
figure: user+system time of the server's whole process tree (every thread of every process, and
the children it has reaped) over a measured run, divided by the requests it answered.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from edge.build_info import stale_compiled_modules  # noqa: E402
from tests.support.tokens import JWT_SECRET_JSON, hasura_claims, mint  # noqa: E402

__all__ = [
    "CLOCK_TICKS",
    "COMPILED_TREE",
    "JWT_SECRET_JSON",
    "NGINX_PROXY",
    "NGINX_UPSTREAM",
    "PY_UPSTREAM",
    "QUERY_BODY",
    "RESPONSE_BODY",
    "ROOT",
    "WRK_DONE",
    "WRK_MANY_TOKENS_SCRIPT",
    "WRK_SCRIPT",
    "Result",
    "Target",
    "cpu_seconds",
    "cpu_times",
    "edge_build",
    "edge_environment",
    "free_port",
    "lua_string",
    "median_run",
    "mint_token",
    "mint_tokens",
    "one_run",
    "run_wrk",
    "start",
    "start_upstream",
    "stop",
    "wait_port",
    "warm_up",
]

QUERY_BODY = json.dumps(
    {
        "query": "query GetUsers($limit: Int!) { users(limit: $limit) { id name email posts { id title "
        "comments { id body } } } }",
        "variables": {"limit": 10},
        "operationName": "GetUsers",
    }
)
RESPONSE_BODY = json.dumps(
    {
        "data": {
            "users": [{"id": i, "name": f"user-{i}", "email": f"user{i}@example.com", "posts": []} for i in range(14)]
        }
    }
)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 20.0, process: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until something accepts connections on ``port``; fail early if ``process`` has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(
                f"the server exited ({process.returncode}) before listening on {port}:\n{stderr_tail(process)}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        # The command name (field 2) may hold spaces and parentheses: split after its last ")".
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _children(pid: int) -> list[int]:
    """Child processes of every thread of ``pid`` (a child belongs to the thread that forked it)."""
    children: list[int] = []
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return children
    for tid in threads:
        try:
            children += [int(child) for child in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
        except OSError:
            continue
    return children


def cpu_times(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of ``pid`` and all its descendants, every thread included.

    ``/proc/<pid>/stat`` sums the process's threads (exited ones too); cutime and cstime add the
    children it has already reaped, so a worker that exits between two readings is still counted.
    System time is the kernel's work for the process: its socket calls, and on loopback the TCP
    delivery to the peer's socket as well.
    """
    user = system = 0
    pending = [pid]
    seen: set[int] = set()
    while pending:
        one = pending.pop()
        if one in seen:
            continue
        seen.add(one)
        fields = _stat_fields(one)
        if fields is None:
            continue
        # After the command name: utime, stime, cutime, cstime are fields 12 to 15 of the whole line.
        user += int(fields[11]) + int(fields[13])
        system += int(fields[12]) + int(fields[14])
        pending += _children(one)
    return user / CLOCK_TICKS, system / CLOCK_TICKS


def cpu_seconds(pid: int) -> float:
    """User+system CPU of ``pid`` and all its descendants (:func:`cpu_times`, added)."""
    return sum(cpu_times(pid))


@dataclass
class Result:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us_per_request: float | None
    errors: int
    kernel_us_per_request: float | None = None
    """The system-time part of ``cpu_us_per_request``."""


NGINX_UPSTREAM = """
worker_processes 1; daemon off; pid {tmp}/upstream.pid; error_log {tmp}/upstream.err warn;
events {{ worker_connections 4096; }}
http {{ access_log off; keepalive_requests 1000000; keepalive_timeout 120s;
  client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy; fastcgi_temp_path {tmp}/fcgi;
  uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
  server {{ listen 127.0.0.1:{port} backlog=4096;
    location = /v1/graphql {{ default_type application/json; return 200 '{body}'; }}
    location = /healthz {{ return 200 'OK'; }} }} }}
"""

NGINX_PROXY = """
worker_processes 1; daemon off; pid {tmp}/proxy.pid; error_log {tmp}/proxy.err warn;
events {{ worker_connections 4096; }}
http {{ access_log off; keepalive_requests 1000000;
  client_body_temp_path {tmp}/pbody; proxy_temp_path {tmp}/pproxy; fastcgi_temp_path {tmp}/pfcgi;
  uwsgi_temp_path {tmp}/puwsgi; scgi_temp_path {tmp}/pscgi;
  upstream hasura {{ server 127.0.0.1:{upstream}; keepalive 128; keepalive_requests 1000000; }}
  server {{ listen 127.0.0.1:{port} backlog=4096;
    location = /graphql {{ proxy_pass http://hasura/v1/graphql; proxy_http_version 1.1;
      proxy_set_header Connection ""; }} }} }}
"""

PY_UPSTREAM = textwrap.dedent(
    """
    import asyncio, sys, uvloop
    BODY = sys.argv[2].encode()
    RESP = (b"HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\nContent-Length: "
            + str(len(BODY)).encode() + b"\\r\\n\\r\\n" + BODY)
    class P(asyncio.Protocol):
        def connection_made(self, t): self.t = t; self.buf = b""
        def data_received(self, d):
            self.buf += d
            while True:
                head, sep, rest = self.buf.partition(b"\\r\\n\\r\\n")
                if not sep: return
                n = 0
                for line in head.split(b"\\r\\n"):
                    if line.lower().startswith(b"content-length:"): n = int(line.split(b":")[1])
                if len(rest) < n: return
                self.buf = rest[n:]; self.t.write(RESP)
    async def main():
        s = await asyncio.get_running_loop().create_server(P, "127.0.0.1", int(sys.argv[1]), backlog=4096)
        await s.serve_forever()
    uvloop.run(main())
    """
)

# What every wrk script ends with: the line run_wrk() reads (requests, p50 and p99 in µs, errors, duration).
WRK_DONE = """
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d %d\\n", summary.requests, latency:percentile(50),
    latency:percentile(99), summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout, summary.duration))
end
"""

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"
""" + WRK_DONE.replace("{", "{{").replace("}", "}}")

# The same POST with a different bearer token per request, taken round-robin from ``tokens`` (a Lua
# table of strings). The requests are formatted once, in each thread's ``init``; ``setup`` gives each
# wrk thread its own starting point so that the two threads do not send the same token at once.
WRK_MANY_TOKENS_SCRIPT = """
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
local tokens = {{ {tokens} }}
local requests = {{}}
local position = 1
local started = 0
setup = function(thread)
  thread:set("first", started * 2503)
  started = started + 1
end
init = function(args)
  for index, token in ipairs(tokens) do
    wrk.headers["Authorization"] = "Bearer " .. token
    requests[index] = wrk.format()
  end
  position = (first or 0) % #requests + 1
end
request = function()
  local formatted = requests[position]
  position = position % #requests + 1
  return formatted
end
""" + WRK_DONE.replace("{", "{{").replace("}", "}}")


def lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


def mint_token() -> str:
    """The bearer token every benchmark sends: HS256, Hasura claims for user-1, valid for an hour."""
    return mint(hasura_claims("user-1"), expires_in=3600)


def mint_tokens(count: int) -> list[str]:
    """``count`` tokens like :func:`mint_token`'s, one per user (user-0, user-1...): as many distinct users."""
    return [mint(hasura_claims(f"user-{index}"), expires_in=3600) for index in range(count)]


def run_wrk(
    port: int, path: str, script: Path, duration: float, connections: int
) -> tuple[int, float, float, int, float]:
    output = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{int(duration)}s", "-s", str(script), f"http://127.0.0.1:{port}{path}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(line for line in output.splitlines() if line.startswith("RESULT"))
    requests, p50_us, p99_us, errors, duration_us = (int(value) for value in line.split()[1:])
    return requests, p50_us / 1000, p99_us / 1000, errors, duration_us / 1e6


@dataclass(frozen=True)
class Target:
    """A server that wrk loads: where the requests go, and whose CPU counts (``pid``; None: none counted)."""

    name: str
    port: int
    path: str
    pid: int | None
    script: Path
    warm_requests: int = 0
    """The warm-up's least number of requests (a script with many tokens: every one verified before
    the measured runs, as in a server that has been up for a while)."""


def warm_up(target: Target, seconds: float, connections: int) -> None:
    """wrk for ``seconds``, repeated until it has sent ``target.warm_requests``."""
    warmed = run_wrk(target.port, target.path, target.script, seconds, connections)[0]
    while warmed < target.warm_requests:
        warmed += run_wrk(target.port, target.path, target.script, seconds, connections)[0]


def one_run(target: Target, duration: float, connections: int) -> Result:
    """One measured run: wrk's figures, and the CPU that ``target.pid``'s process tree spent meanwhile."""
    before = cpu_times(target.pid) if target.pid else (0.0, 0.0)
    requests, p50, p99, errors, seconds = run_wrk(target.port, target.path, target.script, duration, connections)
    if not target.pid or not requests:
        return Result(target.name, requests / seconds, p50, p99, None, errors)
    user, system = (after - start for after, start in zip(cpu_times(target.pid), before, strict=True))
    return Result(
        target.name, requests / seconds, p50, p99, (user + system) / requests * 1e6, errors, system / requests * 1e6
    )


def median_run(runs: list[Result]) -> Result:
    """The run with the median requests/s (of an even number, the faster middle one), all its figures
    from that same run."""
    return sorted(runs, key=lambda result: result.rps)[len(runs) // 2]


# Each server's stderr goes to an unlinked temporary file, never to a pipe: nobody reads a pipe while wrk
# runs, and a server that logs (the edge's access log at `info`) would block once the pipe's 64 KiB fill up.
_STDERR: dict[int, IO[bytes]] = {}


def start(command: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """Start a server in its own process group, so that :func:`stop` can end whatever it spawned."""
    stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop(), after the server has exited)
    process = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True
    )
    _STDERR[process.pid] = stderr
    return process


def stderr_tail(process: subprocess.Popen[bytes], limit: int = 4000) -> str:
    """The end of what a server started by :func:`start` wrote to stderr."""
    stderr = _STDERR.get(process.pid)
    if stderr is None:
        return ""
    stderr.seek(0, os.SEEK_END)
    stderr.seek(max(0, stderr.tell() - limit))
    return stderr.read().decode("utf-8", "replace")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (the server's graceful shutdown), SIGKILL after 10 s; then any process left in its group."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # the group is this process's own (start_new_session)
    stderr = _STDERR.pop(process.pid, None)
    if stderr is not None:
        stderr.close()


def start_upstream(tmp: Path, nginx: str | None) -> tuple[subprocess.Popen[bytes], int]:
    """The fast upstream on a free port: nginx with one worker, or the small uvloop server without nginx."""
    port = free_port()
    if nginx:
        conf = tmp / "upstream.conf"
        conf.write_text(NGINX_UPSTREAM.format(tmp=tmp, port=port, body=RESPONSE_BODY))
        process = start([nginx, "-c", str(conf), "-p", str(tmp)])
    else:
        process = start([sys.executable, "-c", PY_UPSTREAM, str(port), RESPONSE_BODY])
    try:
        wait_port(port, process=process)
    except BaseException:
        stop(process)
        raise
    return process, port


COMPILED_TREE = ROOT / "build" / "compiled"
"""``make compile``'s build: with ``PYTHONPATH`` on it, ``python -m edge`` runs the compiled request path."""


def edge_build(interpreted: bool = False) -> tuple[dict[str, str], str]:
    """The variables that run the benchmarked build of the edge, and that build as ``python -m edge --version``
    names it: ``build/compiled/`` when ``make compile`` has built it (unless ``interpreted``), else this
    checkout's sources as Python. Exits 2 when the compiled build differs from the sources."""
    if interpreted or not (COMPILED_TREE / "edge").is_dir():
        env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
        variables: dict[str, str] = {}
    else:
        stale = stale_compiled_modules(COMPILED_TREE / "edge")
        if stale:
            names = ", ".join(str(path.relative_to(COMPILED_TREE)) for path in stale)
            sys.exit(f"build/compiled/ differs from the sources ({names}): run `make compile`")
        variables = {"PYTHONPATH": str(COMPILED_TREE)}
        env = {**os.environ, **variables}
    version = subprocess.run(
        [sys.executable, "-m", "edge", "--version"], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    where = "build/compiled/" if variables else "the checkout's sources"
    return variables, f"{version.partition(' (')[2].removesuffix(')')}, from {where}"


def edge_environment(upstream_port: int, edge_port: int, **extra: str) -> dict[str, str]:
    """The environment the edge runs with in every benchmark: this process's, less any EDGE_ variable
    (and PYTHONPATH: ``extra`` has the build's, from ``edge_build``)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("EDGE_") and key != "PYTHONPATH"}
    env.update(
        {
            "EDGE_HASURA_URL": f"http://127.0.0.1:{upstream_port}",
            "EDGE_HASURA_ADMIN_SECRET": "bench-admin-secret",
            "EDGE_JWT_SECRET": JWT_SECRET_JSON,
            "EDGE_PORT": str(edge_port),
            "EDGE_LOG_LEVEL": "warning",
            **extra,
        }
    )
    return env
