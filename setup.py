"""Build hasura-edge. Everything but the compiled request path is in pyproject.toml.

With ``EDGE_MYPYC=1`` the modules a ``/graphql`` request runs through are compiled to C extensions
with mypyc (part of mypy; the code is already checked with ``mypy --strict``), which cuts the CPU
a request costs (measured in ``docs/benchmarks.md``). The Docker image and ``make test`` build it compiled;
``make compile`` builds the extensions in place for a checkout. Without the variable (a plain
``pip install -e .``) the same modules run as ordinary Python, which is what editing wants.
"""

from __future__ import annotations

import os

from setuptools import setup

# The request path, stage by stage: the HTTP server's connection and exchanges, then the
# pipeline. Left interpreted on purpose: the server's WebSocket, lifespan and listening code (not
# per request), edge/graphql/policy.py and
# edge/graphql/analysis.py (their error subclasses keep class-level codes; the compiled stage calls
# the analysis cache directly), edge/observability/metrics_app.py (an ASGI app, which servers
# recognise by inspecting a Python coroutine function).
COMPILED_MODULES = [
    "edge/context.py",
    "edge/session.py",
    "edge/graphql_http.py",
    "edge/http_server/connection.py",
    "edge/http_server/exchange.py",
    "edge/http_server/responses.py",
    "edge/http_server/state.py",
    "edge/pipeline/receive_request.py",
    "edge/strict_json.py",
    "edge/http/request_id.py",
    "edge/pipeline/authenticate.py",
    "edge/pipeline/identify_plan.py",
    "edge/pipeline/analyse_operation.py",
    "edge/pipeline/limit.py",
    "edge/limits/gcra.py",
    "edge/limits/calendar.py",
    "edge/limits/decision.py",
    "edge/limits/memory.py",
    "edge/limits/redis_store.py",
    "edge/limits/resp_client.py",
    "edge/pipeline/inject_session.py",
    "edge/pipeline/proxy.py",
    "edge/pipeline/finish_response.py",
    "edge/pipeline/respond.py",
    "edge/pipeline/cached_proxy.py",
    "edge/pipeline/traced_proxy.py",
    "edge/http/response_headers.py",
    "edge/http/cors.py",
    "edge/auth/jwt_verifier.py",
    "edge/graphql/cost.py",
    "edge/graphql/actual_cost.py",
    "edge/graphql/answer_shape.py",
    "edge/cache/response_cache.py",
    "edge/cache/key.py",
    "edge/upstream/base.py",
    "edge/upstream/lean.py",
    "edge/upstream/balancer.py",
    "edge/upstream/breaker.py",
    "edge/observability/recorder.py",
    "edge/observability/metrics.py",
    "edge/observability/metering.py",
    "edge/observability/access_log.py",
]


def ext_modules() -> list[object]:
    if os.environ.get("EDGE_MYPYC") != "1":
        return []
    from mypyc.build import mypycify

    return list(mypycify(COMPILED_MODULES, opt_level="3", group_name="edge.native"))


setup(ext_modules=ext_modules())
