"""Which upstream client should the edge use? Measure them behind the same raw-ASGI proxy.

    .venv/bin/python bench/upstream_clients.py [--duration 8] [--connections 64] [--kinds lean,httpx]

One execution starts, each in its own process and all on 127.0.0.1:
  * a fast upstream: asyncio (uvloop) + httptools, a fixed ~1 KB JSON body, keep-alive;
  * for each client kind, a minimal raw-ASGI proxy under uvicorn (uvloop, httptools, no access
    log, 1 worker) that forwards POST /graphql to {upstream}/v1/graphql via ``make_upstream(kind)``;
  * a closed-loop load generator (asyncio + httptools, N keep-alive connections, fixed duration)
    that records per-request latency. ``wrk`` is used instead when it is on PATH.
It reports requests/s, p50/p99, the proxy's CPU µs per request (utime+stime from /proc) and the
ratio to the direct-to-upstream run of the same execution. All processes share this machine's
cores: the load generator is a Python process too, so the direct run is capped by it.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("lean", "httpx-aiohttp", "httpx2", "httpx")
QUERY_BODY = json.dumps(
    {
        "query": "query GetUsers($limit: Int!) { users(limit: $limit) { id name email posts { id title "
        "comments { id body } } } }",
        "variables": {"limit": 10},
        "operationName": "GetUsers",
    }
).encode()
AUTH = b"Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." + b"x" * 200 + b".sig"
UPSTREAM_BODY = json.dumps(
    {"data": {"users": [{"id": i, "name": f"user {i}", "email": f"u{i}@example.com"} for i in range(20)]}},
    separators=(",", ":"),
).encode()


def _use_uvloop() -> None:
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass


def _listen() -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(4096)
    return sock


def _ready(sock: socket.socket) -> None:
    print(f"READY {sock.getsockname()[1]}", flush=True)


# Role: upstream (a mock Hasura that costs as little CPU as Python allows) -------------------------


def run_upstream() -> None:
    import httptools

    response = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json; charset=utf-8\r\nx-request-id: bench\r\n"
        b"content-length: %d\r\n\r\n%s" % (len(UPSTREAM_BODY), UPSTREAM_BODY)
    )

    class Server(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport: Any = transport
            self.parser = httptools.HttpRequestParser(self)

        def data_received(self, data: bytes) -> None:
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserError:
                self.transport.close()

        def on_message_complete(self) -> None:
            self.transport.write(response)

    async def main() -> None:
        sock = _listen()
        server = await asyncio.get_running_loop().create_server(Server, sock=sock)
        _ready(sock)
        async with server:
            await server.serve_forever()

    _use_uvloop()
    asyncio.run(main())


# Role: proxy (raw ASGI under uvicorn, one client kind) -------------------------------------------


def run_proxy(kind: str, upstream_url: str, max_connections: int) -> None:
    import uvicorn

    sys.path.insert(0, str(ROOT))
    from edge.upstream import Upstream, UpstreamError, UpstreamTimeout, make_upstream

    state: dict[str, Upstream] = {}

    async def app(scope: dict[str, Any], receive: Callable[[], Awaitable[Any]], send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    state["up"] = make_upstream(
                        upstream_url,
                        kind=kind,  # type: ignore[arg-type]
                        connect_timeout=5.0,
                        read_timeout=30.0,
                        max_connections=max_connections,
                    )
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await state["up"].aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        message = await receive()
        body = message.get("body", b"")
        while message.get("more_body"):
            message = await receive()
            body += message.get("body", b"")
        try:
            r = await state["up"].post(body, scope["headers"])
            status, headers, payload = r.status, r.headers, r.body
        except UpstreamError as exc:
            status = 504 if isinstance(exc, UpstreamTimeout) else 502
            headers, payload = [(b"content-type", b"application/json")], b'{"errors":[]}'
        headers = [*headers, (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    sock = _listen()
    config = uvicorn.Config(app, loop="uvloop", http="httptools", access_log=False, log_level="warning", lifespan="on")
    _ready(sock)
    uvicorn.Server(config).run(sockets=[sock])


# Role: load generator -----------------------------------------------------------------------------


def run_load(port: int, path: str, connections: int, duration: float) -> None:
    import httptools

    request = (
        b"POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
        b"Authorization: %s\r\nContent-Length: %d\r\n\r\n%s" % (path.encode(), port, AUTH, len(QUERY_BODY), QUERY_BODY)
    )
    latencies: list[float] = []
    errors = [0]

    class Client(asyncio.Protocol):
        def __init__(self, deadline: float, done: asyncio.Future[None]) -> None:
            self.deadline, self.done = deadline, done
            self.parser = httptools.HttpResponseParser(self)

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport: Any = transport
            self.sent = time.perf_counter()
            self.transport.write(request)

        def data_received(self, data: bytes) -> None:
            self.parser.feed_data(data)

        def on_message_complete(self) -> None:
            now = time.perf_counter()
            latencies.append(now - self.sent)
            if self.parser.get_status_code() != 200:
                errors[0] += 1
            if now < self.deadline:  # closed loop: the next request leaves when this one is answered
                self.sent = now
                self.transport.write(request)
            else:
                self.transport.close()

        def connection_lost(self, exc: Exception | None) -> None:
            if not self.done.done():
                self.done.set_result(None)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        deadline = start + duration
        futures = [loop.create_future() for _ in range(connections)]
        for fut in futures:
            await loop.create_connection(lambda f=fut: Client(deadline, f), "127.0.0.1", port)  # type: ignore[misc]
        await asyncio.wait(futures, timeout=duration + 30)
        elapsed = time.perf_counter() - start
        print(json.dumps({"requests": len(latencies), "errors": errors[0], "elapsed": elapsed, **_pcts(latencies)}))

    _use_uvloop()
    asyncio.run(main())


def _pcts(latencies: list[float]) -> dict[str, float]:
    if not latencies:
        return {"p50_ms": float("nan"), "p99_ms": float("nan")}
    ordered = sorted(latencies)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return {"p50_ms": pick(0.50), "p99_ms": pick(0.99)}


# Orchestration ------------------------------------------------------------------------------------


def _spawn(*args: str, log: Path) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, __file__, *args],
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("READY "):
        proc.kill()
        raise RuntimeError(f"{args[1]} did not start: {log.read_text()[-2000:]}")
    return proc, int(line.split()[1])


def _spawn_nginx(workdir: Path) -> tuple[subprocess.Popen[str], int]:
    """nginx as the upstream (the reference's setup): 1 worker, fixed body, keep-alive forever."""
    with socket.socket() as probe:  # a free port; nginx binds it a moment later
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    temp = "".join(f"{k}_temp_path {workdir}/{k};\n" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (workdir / "nginx.conf").write_text(
        f"worker_processes 1; daemon off; pid {workdir}/nginx.pid; error_log stderr warn;\n"
        "events { worker_connections 4096; }\n"
        f"http {{ access_log off; keepalive_requests 1000000; keepalive_timeout 120s;\n{temp}"
        f"server {{ listen 127.0.0.1:{port} backlog=4096; location / {{ default_type application/json; "
        f"return 200 '{UPSTREAM_BODY.decode()}'; }} }} }}\n"
    )
    log = (workdir / "nginx.log").open("w")
    proc = subprocess.Popen(["nginx", "-p", str(workdir), "-c", str(workdir / "nginx.conf")], stderr=log, text=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"nginx did not start: {(workdir / 'nginx.log').read_text()[-2000:]}")


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _use_wrk(args: argparse.Namespace) -> bool:
    return args.loadgen == "wrk" or (args.loadgen == "auto" and shutil.which("wrk") is not None)


def _load(port: int, path: str, connections: int, duration: float, wrk: bool) -> dict[str, Any]:
    if wrk:
        return _wrk(port, path, connections, duration)
    cmd = [sys.executable, __file__, "--role", "load", "--port", str(port), "--path", path]
    cmd += ["--connections", str(connections), "--duration", str(duration)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=True, cwd=ROOT)
    result: dict[str, Any] = json.loads(out.stdout)
    result["rps"] = result["requests"] / result["elapsed"]
    return result


def _wrk(port: int, path: str, connections: int, duration: float) -> dict[str, Any]:
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text(
        f'wrk.method = "POST"\nwrk.body = {json.dumps(QUERY_BODY.decode())}\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "{AUTH.decode()}"\n'
        'done = function(s, lat, req) io.write(string.format(\'JSON {"requests": %d, "errors": %d, '
        '"elapsed": %f, "p50_ms": %f, "p99_ms": %f}\\n\', s.requests, s.errors.status + s.errors.connect '
        "+ s.errors.read + s.errors.write + s.errors.timeout, s.duration / 1e6, lat:percentile(50) / 1000, "
        "lat:percentile(99) / 1000)) end\n"
    )
    try:
        cmd = [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}{path}",
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=True)
    finally:
        script.unlink()
    line = next(x for x in out.stdout.splitlines() if x.startswith("JSON "))
    result: dict[str, Any] = json.loads(line[5:])
    result["rps"] = result["requests"] / result["elapsed"]
    return result


def _measure(port: int, path: str, args: argparse.Namespace, pid: int | None) -> dict[str, Any]:
    _load(port, path, args.connections, args.warmup, _use_wrk(args))
    runs = []
    for _ in range(args.runs):
        cpu0, t0 = (_cpu_seconds(pid), time.monotonic()) if pid else (0.0, 0.0)
        result = _load(port, path, args.connections, args.duration, _use_wrk(args))
        if pid:
            cpu = _cpu_seconds(pid) - cpu0
            result["cpu_us"] = cpu / max(result["requests"], 1) * 1e6
            result["cpu_pct"] = cpu / (time.monotonic() - t0) * 100
        runs.append(result)
    runs.sort(key=lambda r: r["rps"])
    return runs[len(runs) // 2]  # the median run by RPS


def orchestrate(args: argparse.Namespace) -> None:
    kinds = [k for k in args.kinds.split(",") if k]
    missing = {"httpx2": "httpx2", "httpx-aiohttp": "httpx_aiohttp"}
    kinds = [k for k in kinds if k not in missing or importlib.util.find_spec(missing[k])]
    logs = Path(tempfile.mkdtemp(prefix="bench-upstream-"))
    loadgen = "wrk -t2" if _use_wrk(args) else "python asyncio+httptools load generator (1 process)"
    sniffio = "installed" if importlib.util.find_spec("sniffio") else "NOT installed (httpcore re-imports it per lock)"
    print(f"# {time.strftime('%Y-%m-%d %H:%M:%S')}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    print(f"# load: {loadgen}, c={args.connections}, {args.duration:g}s x {args.runs} run(s) (median), ", end="")
    print(f"{args.warmup:g}s warm-up; {len(QUERY_BODY)}-byte POST, {len(UPSTREAM_BODY)}-byte response")
    server = (
        args.upstream_server if args.upstream_server != "auto" else ("nginx" if shutil.which("nginx") else "python")
    )
    print(f"# upstream: {'nginx, 1 worker' if server == 'nginx' else 'python asyncio+httptools (uvloop)'}")
    print(f"# proxy: uvicorn 1 worker, uvloop, httptools, raw ASGI, max_connections={args.max_connections}")
    print(f"# sniffio: {sniffio}")
    if server == "nginx":
        upstream, up_port = _spawn_nginx(logs)
    else:
        upstream, up_port = _spawn("--role", "upstream", log=logs / "upstream.log")
    rows: list[tuple[str, dict[str, Any]]] = []
    try:
        direct = _measure(up_port, "/v1/graphql", args, None)
        rows.append(("direct", direct))
        for kind in kinds:
            proxy, port = _spawn(
                "--role", "proxy", "--kind", kind, "--upstream", f"http://127.0.0.1:{up_port}",
                "--max-connections", str(args.max_connections), log=logs / f"proxy-{kind}.log",
            )  # fmt: skip
            try:
                rows.append((kind, _measure(port, "/graphql", args, proxy.pid)))
            finally:
                _stop(proxy)
    finally:
        _stop(upstream)
    print()
    print("| client | req/s | p50 ms | p99 ms | proxy CPU µs/req | proxy CPU % | vs direct | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in rows:
        cpu = f"{r['cpu_us']:.0f}" if "cpu_us" in r else "-"
        pct = f"{r['cpu_pct']:.0f}" if "cpu_pct" in r else "-"
        ratio = r["rps"] / direct["rps"]
        print(
            f"| {name} | {r['rps']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {cpu} | {pct} "
            f"| {ratio:.3f} | {r['errors']} |"
        )
    ranked = sorted(rows[1:], key=lambda item: item[1]["rps"], reverse=True)
    if ranked:
        best, rest = ranked[0], ranked[1:]
        vs = ", ".join(f"{best[1]['rps'] / r['rps']:.1f}x {n}" for n, r in rest)
        print(f"\nwinner: {best[0]} ({vs})")
    print(f"logs: {logs}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measured run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per target")
    parser.add_argument("--runs", type=int, default=3, help="measured runs per target (median reported)")
    parser.add_argument("--connections", type=int, default=64, help="load generator connections")
    parser.add_argument("--max-connections", type=int, default=256, help="proxy's upstream pool size")
    parser.add_argument(
        "--upstream-server", choices=("auto", "nginx", "python"), default="auto", help="auto: nginx if on PATH"
    )
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto", help="auto: wrk if on PATH")
    parser.add_argument("--kinds", default=",".join(KINDS), help="comma-separated client kinds")
    parser.add_argument("--role", choices=("orchestrate", "upstream", "proxy", "load"), default="orchestrate")
    parser.add_argument("--kind", help=argparse.SUPPRESS)
    parser.add_argument("--upstream", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--path", default="/graphql", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "upstream":
        run_upstream()
    elif args.role == "proxy":
        run_proxy(args.kind, args.upstream, args.max_connections)
    elif args.role == "load":
        run_load(args.port, args.path, args.connections, args.duration)
    else:
        orchestrate(args)


if __name__ == "__main__":
    main()
