"""``python -m edge check-config``: validate the whole configuration without serving or connecting anywhere.

It reads what ``python -m edge`` reads (the ``EDGE_*`` variables, the ``EDGE_CONFIG`` file, the JWT
configs) and loads every file the settings name (the TLS certificate and key, the persisted-operations
manifest, the Hasura metadata directory), then checks what can be known without a network: the ports
do not collide, the upstream client's optional packages are installed. Nothing listens, nothing is
contacted (Hasura, Redis, Postgres, a JWKS URL).

Exit codes: 0 the configuration is usable (a summary on standard output; warnings, if any, on
standard error); 2 it is not (one line per problem on standard error).
"""

from __future__ import annotations

import ipaddress
import sys
from typing import TextIO
from urllib.parse import urlsplit

from edge.cli_parser import CommandParser, parse_command
from edge.configuration import LoadedSettings, load_settings, write_problems
from edge.graphql.manifest import Manifest, ManifestError
from edge.graphql.permissions import MetadataError, PermissionLimits
from edge.redis_topology import parse_redis_url
from edge.rest.endpoints import RestEndpoints
from edge.serve import StartupError, load_server_config, upstream_client_problem
from edge.settings import EdgeSettings

__all__ = ["EXIT_INVALID", "EXIT_OK", "check_files", "main"]

EXIT_OK = 0
EXIT_INVALID = 2


def check_files(loaded: LoadedSettings, settings: EdgeSettings) -> tuple[list[str], list[str]]:
    """Load what the settings point at; the problems, and a line of summary per part that loaded."""
    problems: list[str] = []
    summary: list[str] = []
    try:
        config = load_server_config(settings)
    except StartupError as exc:
        problems.append(str(exc))
    else:
        scheme = "https and wss" if config.tls is not None else "http and ws"
        summary.append(f"listening: {scheme} on {_address(settings.host, settings.port)}")
    if settings.metrics_port is not None:
        if settings.metrics_port == settings.port and _overlap(settings.host, settings.metrics_host):
            problems.append(
                f"{loaded.name_of('metrics_port')}: the same port as {loaded.name_of('port')} ({settings.port})"
            )
        summary.append(f"metrics: on {_address(settings.metrics_host, settings.metrics_port)}")
    elif settings.metrics_token is not None:
        summary.append("metrics: on the main port, with a bearer token")
    problem = upstream_client_problem(settings, loaded.name_of("upstream_client"))
    if problem is not None:
        problems.append(problem)
    if settings.persisted_manifest_file is not None:
        try:
            manifest = Manifest.from_file(settings.persisted_manifest_file)
        except ManifestError as exc:
            problems.append(f"{loaded.name_of('persisted_manifest_file')}: {exc}")
        else:
            summary.append(f"persisted-operations manifest: {len(manifest)} operation(s)")
    if settings.hasura_metadata_dir is not None:
        try:
            limits = PermissionLimits.from_metadata_dir(settings.hasura_metadata_dir)
            endpoints = RestEndpoints.from_metadata_dir(settings.hasura_metadata_dir)
        except MetadataError as exc:
            problems.append(f"{loaded.name_of('hasura_metadata_dir')}: {exc}")
        else:
            summary.append(f"hasura metadata: row limits for {len(limits.as_dict())} type(s)")
            summary.append(f"hasura metadata: {len(endpoints)} REST endpoint(s)")
    return problems, summary


def _safelist_warnings(loaded: LoadedSettings, settings: EdgeSettings) -> list[str]:
    if settings.persisted_manifest_file is not None:
        return []
    return [
        f"plan {name!r} has graphql.safelist but {loaded.name_of('persisted_manifest_file')} is unset: "
        "every operation on it is refused"
        for name, plan in sorted(settings.plans.items())
        if plan.graphql.safelist
    ]


def _overlap(first: str, second: str) -> bool:
    wildcard = {"0.0.0.0", "::", ""}  # compared, not bound
    return first == second or first in wildcard or second in wildcard


def _address(host: str, port: int) -> str:
    try:
        return f"[{host}]:{port}" if ipaddress.ip_address(host).version == 6 else f"{host}:{port}"
    except ValueError:
        return f"{host}:{port}"


def _origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: a URL's user information or query may be a credential."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}"


def _summary(loaded: LoadedSettings, settings: EdgeSettings) -> list[str]:
    lines = []
    if loaded.config_path is not None:
        lines.append(f"EDGE_CONFIG: {loaded.config_path} ({len(loaded.from_file)} setting(s))")
    lines.append(f"environment: {len(loaded.from_environment)} EDGE_* setting(s)")
    if settings.hasura_urls:
        lines.append(f"hasura: several instances (EDGE_HASURA_URLS), client {settings.upstream_client}")
    else:
        lines.append(f"hasura: {_origin(settings.hasura_base_url)}, client {settings.upstream_client}")
    identity = []
    configs = settings.jwt_configs
    if configs:
        fetched = sum(1 for config in configs if config.jwk_url)
        identity.append(f"JWT ({len(configs)} config(s){f', {fetched} with jwk_url' if fetched else ''})")
    if settings.authorizer_url is not None:
        identity.append(f"authorizer webhook ({settings.authorizer_mode})")
    if settings.database_url is not None:
        identity.append("API keys (EDGE_DATABASE_URL)")
    if settings.unauthorized_role is not None:
        identity.append(f"unauthorized role {settings.unauthorized_role!r}")
    lines.append(f"identity: {', '.join(identity)}")
    lines.append(
        f"plans: {', '.join(sorted(settings.plans))} "
        f"(with JWT: {settings.jwt_plan}, without credentials: {settings.anonymous_plan})"
    )
    redis_url = settings.redis_url
    shared = parse_redis_url(redis_url.get_secret_value()).describe() if redis_url else "in memory, per process"
    lines.append(f"limits and budgets: {shared}; response cache: {settings.response_cache}")
    return lines


def _build_parser(out: TextIO) -> CommandParser:
    return CommandParser(
        prog="python -m edge check-config",
        description=(
            "Validate the configuration (EDGE_* variables, the EDGE_CONFIG file, JWT configs, TLS files, plans, "
            "the persisted-operations manifest, the Hasura metadata directory) without serving or connecting "
            "anywhere. Exit 0 with a summary, or 2 with one line per problem."
        ),
        out=out,
    )


def main(argv: list[str], *, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Run ``check-config``; return the exit code (see the module docstring)."""
    args = parse_command(_build_parser(out), argv, command="check-config", err=err, usage_exit=EXIT_INVALID)
    if isinstance(args, int):
        return args
    loaded = load_settings()
    settings = loaded.settings
    if settings is None:
        write_problems(err, loaded.problems, loaded.warnings)
        return EXIT_INVALID
    problems, files = check_files(loaded, settings)
    warnings = loaded.warnings + _safelist_warnings(loaded, settings)
    write_problems(err, problems, warnings)
    if problems:
        return EXIT_INVALID
    out.write("configuration ok\n")
    for line in _summary(loaded, settings) + files:
        out.write(f"  {line}\n")
    return EXIT_OK
