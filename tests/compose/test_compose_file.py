"""docker-compose.yml against the Compose Specification and the rules the schema cannot express.

Without Docker or Hasura, these keep `docker compose up --build` honest: the file is valid, it starts in a
working order (healthchecks behind every service_healthy, the one-shot certificate service behind
service_completed_successfully), exposes only the edge, over https with a development CA written to the
git-ignored ./.dev-certs, works without a .env file, hands Hasura every variable its metadata reads, wires the
services to each other on the names and ports they really listen on, and configures each Python service only
with settings that exist and validate.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.error import URLError
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from actions.settings import ActionsSettings
from edge.__main__ import main as edge_main
from edge.db.cli import DatabaseSettings
from edge.graphql.permissions import PermissionLimits
from edge.settings import EdgeSettings
from edge.ws.devcert import main as devcert_main
from tests.compose import support
from tests.compose.compose_schema import load_compose_spec
from tests.support.postgres import fresh_database
from tests.support.servers import serving

HASURA_IMAGE = "hasura/graphql-engine:v2.48.16.cli-migrations-v3"
METADATA_DIR = support.REPO_ROOT / "hasura" / "metadata"
HASURA_README = support.REPO_ROOT / "hasura" / "README.md"
# Where the cli-migrations-v3 entrypoint looks (hasura/graphql-engine, packaging/cli-migrations/v3/docker-entrypoint.sh)
CLI_MIGRATIONS_DIRS = {
    "/hasura-metadata": "hasura/metadata",
    "/hasura-migrations": "migrations",
    "/hasura-seeds": "seeds",
}
PUBLIC_SERVICE = "edge"
CERT_SERVICE = "edge-certs"  # one-shot: writes the development CA and certificate, then exits
MIGRATE_SERVICE = "edge-migrate"  # one-shot: python -m edge db upgrade, then exits
ONE_SHOT_SERVICES = {CERT_SERVICE, MIGRATE_SERVICE}
CERT_DIR = "./.dev-certs"  # bind-mounted, git-ignored; host clients trust CERT_DIR/ca.pem
CERTS_MOUNT = "/certs"
DEVCERT_FILES = ("ca.pem", "edge.pem", "edge-key.pem")  # what edge/ws/devcert.py writes
PLAIN_HTTP_OVERRIDE = support.REPO_ROOT / "docker" / "edge-plain-http.compose.yml"
# `docker compose --profile observability up` adds these; plain `docker compose up` starts none of them.
OBSERVABILITY_PROFILE = "observability"
OBSERVABILITY_SERVICES = {"prometheus", "grafana"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return support.load()


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = compose["services"]
    return result


# --- schema ------------------------------------------------------------------------------------------------


def test_validates_against_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = load_compose_spec()
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda error: list(error.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_the_schema_check_catches_mistakes(compose: dict[str, Any]) -> None:
    """Guard against a vacuous schema: a typo'd key and a wrong depends_on condition are rejected."""
    validator = jsonschema.Draft7Validator(load_compose_spec())
    broken = {**compose, "services": {**compose["services"], "edge": {**compose["services"]["edge"], "helthcheck": {}}}}
    assert list(validator.iter_errors(broken))
    wrong = {"services": {"a": {"image": "x", "depends_on": {"b": {"condition": "service_ready"}}}}}
    assert list(validator.iter_errors(wrong))


def test_the_schema_knows_service_completed_successfully() -> None:
    """The edge waits for edge-certs with `service_completed_successfully`. docker-compose 1.29.2's schema
    already lists that condition, so the whole-file validation above covers it; should the schema ever be
    swapped for one that does not, this fails instead of the condition being dropped to please it."""
    validator = jsonschema.Draft7Validator(load_compose_spec())
    done = {"services": {"a": {"image": "x", "depends_on": {"b": {"condition": "service_completed_successfully"}}}}}
    assert not list(validator.iter_errors(done))


def test_expected_services(services: dict[str, Any]) -> None:
    assert set(services) == {
        "postgres",
        "hasura",
        "redis",
        "actions",
        "edge",
        CERT_SERVICE,
        MIGRATE_SERVICE,
        *OBSERVABILITY_SERVICES,
    }


def test_hasura_image_is_pinned_exactly(services: dict[str, Any]) -> None:
    assert services["hasura"]["image"] == HASURA_IMAGE
    assert "build" not in services["hasura"]


def test_python_services_build_the_repository_image(services: dict[str, Any]) -> None:
    modules = (("edge", "edge"), ("actions", "actions"), (CERT_SERVICE, "edge.ws.devcert"), (MIGRATE_SERVICE, "edge"))
    for name, module in modules:
        build = services[name]["build"]
        context = build if isinstance(build, str) else build.get("context", ".")
        dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        assert (support.REPO_ROOT / context).resolve() == support.REPO_ROOT
        assert (support.REPO_ROOT / context / dockerfile).is_file()
        assert services[name]["command"][:3] == ["python", "-m", module]
        if name not in ONE_SHOT_SERVICES:
            assert services[name]["command"] == ["python", "-m", module]


# --- start order and health --------------------------------------------------------------------------------


def test_every_service_has_a_healthcheck(services: dict[str, Any]) -> None:
    for name, service in services.items():
        if name in ONE_SHOT_SERVICES:
            # Runs to completion; the edge waits for its exit status, not for health.
            assert "healthcheck" not in service and service.get("restart", "no") == "no", name
            continue
        check = service.get("healthcheck")
        assert check and not check.get("disable") and check.get("test"), f"{name} has no healthcheck"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), f"{name}: healthcheck test must be CMD or CMD-SHELL"


def test_depends_on_targets_exist_and_healthy_conditions_have_healthchecks(services: dict[str, Any]) -> None:
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: use the long depends_on form with conditions"
        for target, spec in depends.items():
            assert target in services, f"{name} depends on unknown service {target}"
            if spec.get("condition") == "service_healthy":
                check = services[target].get("healthcheck") or {}
                assert check.get("test") and not check.get("disable"), f"{name} waits for {target}, which has none"
            if spec.get("condition") == "service_completed_successfully":
                assert target in ONE_SHOT_SERVICES, f"{name} waits for {target} to exit, but it keeps running"


def test_start_order(services: dict[str, Any]) -> None:
    def healthy(name: str) -> set[str]:
        return {t for t, s in (services[name].get("depends_on") or {}).items() if s["condition"] == "service_healthy"}

    assert healthy("hasura") == {"postgres"}
    assert healthy("actions") == {"postgres"}
    assert healthy(MIGRATE_SERVICE) == {"postgres"}
    assert {"hasura", "redis"} <= healthy("edge")
    # The edge starts only once the certificate files exist (the cert service exited 0) and its tables are
    # upgraded (the migration service exited 0).
    assert services["edge"]["depends_on"][CERT_SERVICE] == {"condition": "service_completed_successfully"}
    assert services["edge"]["depends_on"][MIGRATE_SERVICE] == {"condition": "service_completed_successfully"}


def test_hasura_healthcheck_uses_healthz_with_a_tool_the_image_has(services: dict[str, Any]) -> None:
    # hasura/graphql-engine images keep curl installed "to support health checks"
    # (packaging/graphql-engine-base/ubuntu.dockerfile; packaging/graphql-engine/Dockerfile's HEALTHCHECK uses it).
    test = services["hasura"]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "curl"]
    assert "-f" in test or any(arg.startswith("-") and "f" in arg and not arg.startswith("--") for arg in test[2:])
    url = urlsplit(test[-1])
    assert (url.hostname, url.port, url.path) == ("localhost", 8080, "/healthz")
    # First boot applies metadata, migrations and seeds before the real server listens.
    assert _seconds(services["hasura"]["healthcheck"]["start_period"]) >= 60


def test_python_healthchecks_probe_the_port_the_service_listens_on(services: dict[str, Any]) -> None:
    ports = {"edge": support.environment(services["edge"])["EDGE_PORT"]}
    ports["actions"] = support.environment(services["actions"])["ACTIONS_PORT"]
    paths = {"edge": "/healthz", "actions": "/readyz"}
    for name, port in ports.items():
        test = services[name]["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python", "-c"], f"{name}: python:3.11-slim has no curl"
        url = re.search(r"https?://[^'\"]+", test[3])
        assert url, f"{name}: no URL in the healthcheck"
        parsed = urlsplit(url.group(0))
        assert (parsed.hostname, str(parsed.port), parsed.path) == ("127.0.0.1", port, paths[name])
        assert parsed.scheme == ("https" if name == "edge" else "http"), f"{name}: the edge serves TLS only"
        compile(test[3], f"<{name} healthcheck>", "exec")


def test_postgres_and_redis_healthchecks(services: dict[str, Any]) -> None:
    postgres = services["postgres"]["healthcheck"]["test"]
    assert postgres[:2] == ["CMD", "pg_isready"]
    env = support.environment(services["postgres"])
    assert env["POSTGRES_DB"] in postgres and env["POSTGRES_USER"] in postgres
    assert "redis-cli ping" in " ".join(services["redis"]["healthcheck"]["test"])


def _seconds(duration: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    total = 0.0
    for amount, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration):
        total += float(amount) * units[unit]
    return total


# --- exposure ----------------------------------------------------------------------------------------------


def test_only_the_edge_publishes_a_port(services: dict[str, Any]) -> None:
    # Operators who want Hasura on localhost add it in a docker-compose.override.yml (see the compose file).
    # The observability profile's UIs are published on this machine's loopback only.
    for name, service in services.items():
        assert service.get("network_mode") != "host", f"{name} must not use the host network"
        if name in OBSERVABILITY_SERVICES:
            ports = support.published_ports(service)
            assert ports and all(port.host_ip == "127.0.0.1" for port in ports), f"{name}: loopback only"
        elif name != PUBLIC_SERVICE:
            assert not service.get("ports") and not service.get("expose"), f"{name} publishes a port"


def test_the_edge_publishes_exactly_its_listening_port(services: dict[str, Any]) -> None:
    ports = support.published_ports(services["edge"])
    env = support.environment(services["edge"])
    assert len(ports) == 1
    assert ports[0].container_port == env["EDGE_PORT"] == "8000"
    assert ports[0].host_port == "8000"  # the default the examples and README use
    assert env["EDGE_HOST"] == "0.0.0.0"


def test_hasura_is_not_published(services: dict[str, Any]) -> None:
    assert all(port.host_ip in ("127.0.0.1", "::1") for port in support.published_ports(services["hasura"]))


# --- variables ---------------------------------------------------------------------------------------------


def test_every_variable_has_a_default_or_is_documented() -> None:
    documented = support.read_env_file()
    for variable in (v for text in support.strings_in(support.load_raw()) for v in support.variables_in(text)):
        assert variable.default is not None or variable.name in documented, f"${{{variable.name}}} has no default"


def test_env_example_documents_every_variable_with_the_compose_default() -> None:
    documented = support.read_env_file()
    used = {v.name: v for text in support.strings_in(support.load_raw()) for v in support.variables_in(text)}
    assert set(documented) == set(used), "the .env.example variables and docker-compose.yml's differ"
    for name, variable in used.items():
        if variable.default is not None:
            assert documented[name] == variable.default, f".env.example's {name} is not the compose default"
    # Same defaults everywhere a variable is used.
    for text in support.strings_in(support.load_raw()):
        for variable in support.variables_in(text):
            assert variable.default == used[variable.name].default, f"{variable.name} has two different defaults"


def test_env_example_warns_about_the_public_defaults() -> None:
    text = support.ENV_EXAMPLE.read_text(encoding="utf-8")
    assert "WARNING" in text and "change" in text.lower()
    assert ".env" in (support.REPO_ROOT / ".gitignore").read_text(encoding="utf-8").split()


def test_the_env_example_values_give_the_same_stack_as_no_env_file(compose: dict[str, Any]) -> None:
    assert support.load(support.read_env_file()) == compose


def test_overriding_a_secret_reaches_every_consumer() -> None:
    overridden = support.load({"HASURA_ADMIN_SECRET": "s" * 40, "ACTIONS_WEBHOOK_SECRET": "w" * 40})
    env = {name: support.environment(service) for name, service in overridden["services"].items()}
    assert env["hasura"]["HASURA_GRAPHQL_ADMIN_SECRET"] == env["edge"]["EDGE_HASURA_ADMIN_SECRET"] == "s" * 40
    assert env["hasura"]["ACTIONS_WEBHOOK_SECRET"] == env["actions"]["ACTIONS_WEBHOOK_SECRET"] == "w" * 40


def test_default_secrets_are_not_placeholders(services: dict[str, Any]) -> None:
    admin = support.environment(services["hasura"])["HASURA_GRAPHQL_ADMIN_SECRET"]
    webhook = support.environment(services["actions"])["ACTIONS_WEBHOOK_SECRET"]
    password = support.environment(services["postgres"])["POSTGRES_PASSWORD"]
    grafana = support.environment(services["grafana"])["GF_SECURITY_ADMIN_PASSWORD"]
    for secret in (admin, webhook, password, grafana):
        assert secret.startswith("dev-only-") and len(secret) >= 32
        assert re.fullmatch(r"[A-Za-z0-9_-]+", secret), "secrets are pasted into URLs and JSON"


# --- Hasura ------------------------------------------------------------------------------------------------


def _metadata_env_names() -> set[str]:
    names: set[str] = set()
    for path in METADATA_DIR.rglob("*"):
        if path.suffix not in (".yaml", ".yml", ".graphql"):
            continue
        text = path.read_text(encoding="utf-8")
        names.update(re.findall(r"\b\w*from_env\s*:\s*['\"]?([A-Za-z_][A-Za-z0-9_]*)", text))
        names.update(re.findall(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}", text))
    return names


def test_hasura_gets_every_variable_its_metadata_reads(services: dict[str, Any]) -> None:
    needed = _metadata_env_names()
    assert {"PG_DATABASE_URL", "ACTIONS_BASE_URL", "ACTIONS_WEBHOOK_SECRET"} <= needed  # the scan works
    readme = set(re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", HASURA_README.read_text(encoding="utf-8"), re.MULTILINE))
    assert needed == readme, "hasura/README.md's variable table and the metadata disagree"
    env = support.environment(services["hasura"])
    for name in sorted(needed):
        assert env.get(name), f"hasura needs {name} (read by hasura/metadata)"


def test_hasura_settings(services: dict[str, Any]) -> None:
    env = support.environment(services["hasura"])
    assert env["HASURA_GRAPHQL_ENABLE_CONSOLE"] == "false"
    assert env["HASURA_GRAPHQL_DEV_MODE"] == "false"
    apis = {api.strip() for api in env["HASURA_GRAPHQL_ENABLED_APIS"].split(",")}
    assert "graphql" in apis and apis <= {"graphql", "metadata"}
    assert env["HASURA_GRAPHQL_ADMIN_SECRET"]
    for absent in ("HASURA_GRAPHQL_JWT_SECRET", "HASURA_GRAPHQL_AUTH_HOOK", "HASURA_GRAPHQL_UNAUTHORIZED_ROLE"):
        assert absent not in env, f"{absent}: the edge authenticates; Hasura only sees the admin secret"
    for name in ("HASURA_GRAPHQL_METADATA_DATABASE_URL", "PG_DATABASE_URL"):
        assert urlsplit(env[name]).hostname == "postgres"


def test_hasura_mounts_the_project_read_only(services: dict[str, Any]) -> None:
    mounts: dict[str, tuple[str, bool]] = {}
    for volume in services["hasura"]["volumes"]:
        source, target, *mode = volume.split(":")
        mounts[target] = (source, "ro" in mode)
    assert set(mounts) == set(CLI_MIGRATIONS_DIRS)
    for target, expected in CLI_MIGRATIONS_DIRS.items():
        source, read_only = mounts[target]
        assert read_only, f"{target} should be mounted read-only"
        assert Path(support.REPO_ROOT, source).resolve() == Path(support.REPO_ROOT, expected).resolve()
        assert (support.REPO_ROOT / expected).is_dir()
    # Metadata source `default` <-> migrations/default and seeds/default (the entrypoint seeds `default`).
    assert (support.REPO_ROOT / "migrations" / "default").is_dir()
    assert (support.REPO_ROOT / "seeds" / "default").is_dir()
    assert (support.REPO_ROOT / "hasura" / "metadata" / "version.yaml").is_file()


def test_every_bind_mount_source_exists(services: dict[str, Any]) -> None:
    named = set((support.load().get("volumes") or {}).keys())
    for name, service in services.items():
        for volume in service.get("volumes") or []:
            source = volume.split(":")[0]
            if source in named:
                continue
            assert source.startswith("."), f"{name}: bind mounts are relative to the repository ({source})"
            if source == CERT_DIR:
                continue  # created by Docker on first start and filled by edge-certs (git-ignored, see below)
            assert (support.REPO_ROOT / source).exists(), f"{name}: {source} does not exist"


def test_shared_secrets_and_database_agree(services: dict[str, Any]) -> None:
    hasura = support.environment(services["hasura"])
    edge = support.environment(services["edge"])
    actions = support.environment(services["actions"])
    postgres = support.environment(services["postgres"])
    migrate = support.environment(services[MIGRATE_SERVICE])
    assert edge["EDGE_HASURA_ADMIN_SECRET"] == hasura["HASURA_GRAPHQL_ADMIN_SECRET"]
    assert actions["ACTIONS_WEBHOOK_SECRET"] == hasura["ACTIONS_WEBHOOK_SECRET"]
    assert migrate["EDGE_DATABASE_URL"] == edge["EDGE_DATABASE_URL"]  # it upgrades the database the edge uses
    for url in (
        hasura["HASURA_GRAPHQL_METADATA_DATABASE_URL"],
        hasura["PG_DATABASE_URL"],
        actions["ACTIONS_DATABASE_URL"],
        edge["EDGE_DATABASE_URL"],
        migrate["EDGE_DATABASE_URL"],
    ):
        parts = urlsplit(url)
        assert (parts.hostname, parts.port or 5432) == ("postgres", 5432)
        assert (parts.username, parts.password) == (postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"])
        assert parts.path == "/" + postgres["POSTGRES_DB"]


# --- wiring between services -------------------------------------------------------------------------------


def test_actions_base_url_points_at_the_actions_service(services: dict[str, Any]) -> None:
    base = support.environment(services["hasura"])["ACTIONS_BASE_URL"]
    url = urlsplit(base)
    actions_env = support.environment(services["actions"])
    port = int(actions_env.get("ACTIONS_PORT") or ActionsSettings.model_fields["port"].default)
    assert url.scheme == "http" and url.hostname == "actions" and url.hostname in services
    assert url.port == port
    assert url.path == "" and not base.endswith("/"), "the metadata appends /actions/... and /events/..."
    assert actions_env["ACTIONS_HOST"] == "0.0.0.0", "the default 127.0.0.1 is unreachable from Hasura"


def test_edge_reaches_hasura_and_redis_by_service_name(services: dict[str, Any]) -> None:
    env = support.environment(services["edge"])
    hasura = urlsplit(env["EDGE_HASURA_URL"])
    assert (hasura.scheme, hasura.hostname, hasura.port) == ("http", "hasura", 8080)
    redis = urlsplit(env["EDGE_REDIS_URL"])
    assert (redis.scheme, redis.hostname, redis.port) == ("redis", "redis", 6379)
    assert env["EDGE_UNAUTHORIZED_ROLE"] == "anonymous"


def _settings_from_env(
    monkeypatch: pytest.MonkeyPatch, prefix: str, env: dict[str, str], settings_cls: type[Any]
) -> Any:
    for name in list(os.environ):
        if name.upper().startswith(prefix) or name == "EDGE_CONFIG":
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return settings_cls()


def test_edge_environment_is_real_settings(services: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    env = support.environment(services["edge"])
    fields = {f"EDGE_{name.upper()}" for name in EdgeSettings.model_fields}
    assert set(env) <= fields, f"not EdgeSettings fields: {sorted(set(env) - fields)}"
    settings = _settings_from_env(monkeypatch, "EDGE_", env, EdgeSettings)  # validates like `python -m edge`
    assert settings.host == "0.0.0.0" and settings.port == 8000
    assert settings.hasura_base_url == "http://hasura:8080"
    assert settings.unauthorized_role == "anonymous"
    assert [config.type for config in settings.jwt_configs] == ["HS256"]
    assert settings.allowed_origins == ["https://localhost:3000", "http://localhost:3000"]
    assert settings.tls_cert_file == Path(CERTS_MOUNT, "edge.pem")
    assert settings.tls_key_file == Path(CERTS_MOUNT, "edge-key.pem")


def test_the_edge_prices_with_the_metadata_hasura_applies(services: dict[str, Any]) -> None:
    """The edge reads each role's select-permission limit from the same directory Hasura's entrypoint applies."""
    env = support.environment(services["edge"])
    mounts = {target: (source, mode) for source, target, *mode in (v.split(":") for v in services["edge"]["volumes"])}
    hasura_mounts = {target: source for source, target, *_ in (v.split(":") for v in services["hasura"]["volumes"])}
    source, mode = mounts[env["EDGE_HASURA_METADATA_DIR"]]
    assert mode == ["ro"]
    applied_by_hasura = Path(support.REPO_ROOT, hasura_mounts["/hasura-metadata"]).resolve()
    assert Path(support.REPO_ROOT, source).resolve() == applied_by_hasura
    limits = PermissionLimits.from_metadata_dir(support.REPO_ROOT / source)
    assert limits.as_dict(), "the demo metadata has select-permission limits for the edge to price with"


def test_actions_environment_is_real_settings(services: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    env = support.environment(services["actions"])
    fields = {f"ACTIONS_{name.upper()}" for name in ActionsSettings.model_fields}
    assert set(env) <= fields, f"not ActionsSettings fields: {sorted(set(env) - fields)}"
    settings = _settings_from_env(monkeypatch, "ACTIONS_", env, ActionsSettings)  # like `python -m actions`
    assert settings.host == "0.0.0.0"
    assert settings.database_url.startswith("postgresql+psycopg://postgres:")


def test_the_migration_service_upgrades_the_edges_tables_and_finds_nothing_to_do_on_a_restart(
    services: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    postgres_server_url: str,
) -> None:
    """Its command, as `python -m edge` dispatches it, with its environment (only the database URL, pointed at a
    test database: the compose host name `postgres` does not resolve here), run twice as a restart would."""
    service = services[MIGRATE_SERVICE]
    env = support.environment(service)
    assert set(env) == {"EDGE_DATABASE_URL"}, "the upgrade needs the database URL and nothing else"
    assert urlsplit(env["EDGE_DATABASE_URL"]).scheme in ("postgres", "postgresql")  # both are libpq URIs
    command = service["command"]
    assert command == ["python", "-m", "edge", "db", "upgrade"]
    with fresh_database(postgres_server_url, prefix="compose_migrate") as url:
        settings = _settings_from_env(monkeypatch, "EDGE_", {"EDGE_DATABASE_URL": url}, DatabaseSettings)
        assert settings.database_url.get_secret_value() == url
        for expected in ("applied 0001_api_keys", "nothing to apply"):
            assert edge_main(command[3:]) == 0
            assert expected in capsys.readouterr().out


def test_python_services_run_hardened(services: dict[str, Any]) -> None:
    for name in ("edge", "actions", CERT_SERVICE, MIGRATE_SERVICE):
        service = services[name]
        assert service.get("read_only") is True
        assert "ALL" in service.get("cap_drop", [])
        assert "no-new-privileges:true" in service.get("security_opt", [])
        if name == CERT_SERVICE:
            # root only to write into the root-owned bind mount and chown the files to the edge's user.
            assert service["user"] == "0:0" and service.get("cap_add") == ["CHOWN"]
        else:
            assert "user" not in service, "the image's non-root USER applies"
            assert not service.get("cap_add")


# --- TLS: the development certificate ----------------------------------------------------------------------


def _mounts(service: dict[str, Any]) -> dict[str, tuple[str, list[str]]]:
    """target -> (source, options) of the short-syntax volume entries."""
    result: dict[str, tuple[str, list[str]]] = {}
    for volume in service.get("volumes") or []:
        source, target, *options = volume.split(":")
        result[target] = (source, options)
    return result


def _devcert_args(services: dict[str, Any]) -> dict[str, str]:
    command = services[CERT_SERVICE]["command"]
    assert command[:3] == ["python", "-m", "edge.ws.devcert"]
    rest = command[3:]
    assert rest[0] == CERTS_MOUNT, "the cert service writes into the mounted directory"
    options = dict(zip(rest[1::2], rest[2::2], strict=True))
    assert set(options) <= {"--hosts", "--owner"}
    return options


def test_the_cert_service_writes_into_the_bind_mounted_dev_certs_dir(services: dict[str, Any]) -> None:
    mounts = _mounts(services[CERT_SERVICE])
    assert mounts == {CERTS_MOUNT: (CERT_DIR, [])}, "a bind mount of ./.dev-certs, writable, nothing else"
    assert not (support.load().get("volumes") or {}).get("edge-certs"), "no named volume: host clients need ca.pem"
    options = _devcert_args(services)
    hosts = options["--hosts"].split(",")
    assert {"localhost", "127.0.0.1", PUBLIC_SERVICE} <= set(hosts)  # host clients, the healthcheck, the network
    assert options["--owner"] == "10001:10001"  # the image's app user (Dockerfile), which runs the edge


def test_the_dockerfile_user_owns_the_certificate_files() -> None:
    dockerfile = (support.REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"--uid 10001 ", dockerfile) and re.search(r"--gid 10001 ", dockerfile)


def test_the_edge_serves_tls_from_the_mounted_files(services: dict[str, Any]) -> None:
    edge = services["edge"]
    mounts = _mounts(edge)
    assert mounts[CERTS_MOUNT] == (CERT_DIR, ["ro"]), "the edge reads the same directory, read-only"
    env = support.environment(edge)
    for name, file in (("EDGE_TLS_CERT_FILE", "edge.pem"), ("EDGE_TLS_KEY_FILE", "edge-key.pem")):
        assert PurePosixPath(env[name]) == PurePosixPath(CERTS_MOUNT, file), name
        assert file in DEVCERT_FILES
    check = edge["healthcheck"]["test"][3]
    assert "https://127.0.0.1:" in check and f"cafile='{CERTS_MOUNT}/ca.pem'" in check
    # Subscriptions hold two descriptors per socket: the default 1024 would cap them at ~500.
    assert edge["ulimits"]["nofile"] == {"soft": 65536, "hard": 65536}


def test_devcert_keeps_existing_files_so_restarts_keep_the_ca(services: dict[str, Any], tmp_path: Path) -> None:
    """The compose command, run twice (owner dropped: the test is not root): files written once, then kept."""
    options = _devcert_args(services)
    target = tmp_path / "certs"
    assert devcert_main([str(target), "--hosts", options["--hosts"]]) == 0
    assert sorted(path.name for path in target.iterdir()) == sorted(DEVCERT_FILES)
    before = {name: (target / name).read_bytes() for name in DEVCERT_FILES}
    assert devcert_main([str(target), "--hosts", options["--hosts"]]) == 0
    assert {name: (target / name).read_bytes() for name in DEVCERT_FILES} == before
    assert (target / "edge-key.pem").stat().st_mode & 0o777 == 0o600


def test_the_edge_healthcheck_passes_against_the_generated_certificate(
    services: dict[str, Any], tmp_path: Path
) -> None:
    """The healthcheck's own code, pointed at a copy of what edge-certs writes and a TLS server using it."""
    options = _devcert_args(services)
    certs = tmp_path / "certs"
    assert devcert_main([str(certs), "--hosts", options["--hosts"]]) == 0

    async def healthz(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        status = 200 if scope["path"] == "/healthz" else 404
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b'{"status":"ok"}'})

    check = services["edge"]["healthcheck"]["test"][3]
    with serving(
        healthz, lifespan="off", ssl_certfile=str(certs / "edge.pem"), ssl_keyfile=str(certs / "edge-key.pem")
    ) as server:
        code = check.replace(f"{CERTS_MOUNT}/", f"{certs}/").replace(":8000/", f":{server.port}/")
        exec(compile(code, "<edge healthcheck>", "exec"), {})  # raises on a TLS or HTTP failure
        with pytest.raises(URLError, match="CERTIFICATE_VERIFY_FAILED"):  # it verifies: another CA is refused
            other = tmp_path / "other"
            devcert_main([str(other), "--hosts", options["--hosts"]])
            exec(compile(code.replace(str(certs), str(other)), "<edge healthcheck>", "exec"), {})


def test_dev_certs_are_git_ignored() -> None:
    lines = (support.REPO_ROOT / ".gitignore").read_text(encoding="utf-8").split()
    assert ".dev-certs/" in lines or ".dev-certs" in lines
    if shutil.which("git") and (support.REPO_ROOT / ".git").exists():
        for path in (".dev-certs/ca.pem", ".dev-certs/edge-key.pem"):
            result = subprocess.run(["git", "check-ignore", "-q", path], cwd=support.REPO_ROOT, check=False)
            assert result.returncode == 0, f"{path} is not git-ignored"


def test_the_plain_http_override_turns_tls_off(services: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """docker/edge-plain-http.compose.yml, merged the way compose merges (environment by key, healthcheck.test
    replaced): the edge then starts without TLS and its healthcheck probes http."""
    override = support.load(path=PLAIN_HTTP_OVERRIDE)
    errors = list(jsonschema.Draft7Validator(load_compose_spec()).iter_errors(override))
    assert not errors, [error.message for error in errors]
    assert set(override["services"]) == {"edge"}
    edge_override = override["services"]["edge"]
    env = {**support.environment(services["edge"]), **support.environment(edge_override)}
    settings = _settings_from_env(monkeypatch, "EDGE_", env, EdgeSettings)
    assert settings.tls_cert_file is None and settings.tls_key_file is None  # empty counts as unset
    test = edge_override["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"] and "http://127.0.0.1:8000/healthz" in test[3]
    compile(test[3], "<plain-http healthcheck>", "exec")


# --- the observability profile (Prometheus and Grafana) ----------------------------------------------------

OBSERVABILITY_DIR = "./deploy/observability"


def _config(relative: str) -> Any:
    return yaml.safe_load((support.REPO_ROOT / relative).read_text(encoding="utf-8"))


def test_the_observability_services_start_only_with_their_profile(services: dict[str, Any]) -> None:
    for name, service in services.items():
        if name in OBSERVABILITY_SERVICES:
            assert service["profiles"] == [OBSERVABILITY_PROFILE], name
        else:
            assert "profiles" not in service, f"{name} must start with a plain `docker compose up`"
            # compose refuses to start a service that waits for one outside the active profiles
            assert not set(service.get("depends_on") or {}) & OBSERVABILITY_SERVICES, name


def test_the_observability_images_are_pinned(services: dict[str, Any]) -> None:
    for name in OBSERVABILITY_SERVICES:
        repository, _, tag = services[name]["image"].rpartition(":")
        assert repository in ("prom/prometheus", "grafana/grafana"), name
        assert re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{name}: pin an exact release, not {tag!r}"
        assert "build" not in services[name]


def test_prometheus_scrapes_the_edges_metrics_listener_and_the_actions_service(
    services: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    edge_env = support.environment(services["edge"])
    edge = _settings_from_env(monkeypatch, "EDGE_", edge_env, EdgeSettings)
    assert edge.metrics_port is not None and edge.metrics_port != edge.port, "/metrics on a listener of its own"
    assert edge.metrics_host == "0.0.0.0", "the default 127.0.0.1 is unreachable from the prometheus container"
    assert edge.metrics_token is None, "the scrape sends no token (the listener is not published)"
    assert all(port.container_port != str(edge.metrics_port) for port in support.published_ports(services["edge"]))
    actions_port = support.environment(services["actions"])["ACTIONS_PORT"]
    expected = {"edge": [f"edge:{edge.metrics_port}"], "actions": [f"actions:{actions_port}"]}
    jobs = {job["job_name"]: job for job in _config(f"{OBSERVABILITY_DIR}/prometheus.yml")["scrape_configs"]}
    assert set(jobs) == set(expected)
    for name, job in jobs.items():
        assert job.get("metrics_path", "/metrics") == "/metrics" and job.get("scheme", "http") == "http", name
        assert [target for config in job["static_configs"] for target in config["targets"]] == expected[name]
        assert name in services and services["prometheus"]["depends_on"][name] == {"condition": "service_healthy"}


def test_prometheus_reads_the_repositorys_configuration(services: dict[str, Any]) -> None:
    prometheus = services["prometheus"]
    flags = dict(argument.split("=", 1) for argument in prometheus["command"])
    mounts = _mounts(prometheus)
    assert mounts[flags["--config.file"]] == (f"{OBSERVABILITY_DIR}/prometheus.yml", ["ro"])
    named = set(support.load().get("volumes") or {})
    assert mounts[flags["--storage.tsdb.path"]][0] in named, "the time series survive a restart"
    [published] = support.published_ports(prometheus)
    assert services["prometheus"]["healthcheck"]["test"][-1] == f"http://127.0.0.1:{published.container_port}/-/ready"


def test_grafana_is_provisioned_from_the_repository(services: dict[str, Any]) -> None:
    grafana = services["grafana"]
    mounts = _mounts(grafana)
    provisioning_source, options = mounts["/etc/grafana/provisioning"]
    assert (provisioning_source, options) == (f"{OBSERVABILITY_DIR}/grafana/provisioning", ["ro"])
    provisioning = support.REPO_ROOT / provisioning_source
    # Every dashboard provider reads a directory mounted from the repository that holds dashboards.
    providers = [p for f in sorted((provisioning / "dashboards").glob("*.yml")) for p in _config(str(f))["providers"]]
    assert providers
    for provider in providers:
        source, options = mounts[provider["options"]["path"]]
        assert options == ["ro"] and sorted((support.REPO_ROOT / source).glob("*.json")), provider["name"]
    home = PurePosixPath(support.environment(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    home_source, _ = mounts[str(home.parent)]
    assert (support.REPO_ROOT / home_source / home.name).is_file()
    # The datasource is the profile's Prometheus, on the port it listens on.
    datasources = [
        d for f in sorted((provisioning / "datasources").glob("*.yml")) for d in _config(str(f))["datasources"]
    ]
    [datasource] = datasources
    url = urlsplit(datasource["url"])
    [prometheus_port] = support.published_ports(services["prometheus"])
    assert (datasource["type"], url.hostname, str(url.port)) == (
        "prometheus",
        "prometheus",
        prometheus_port.container_port,
    )
    assert grafana["depends_on"] == {"prometheus": {"condition": "service_healthy"}}
    [published] = support.published_ports(grafana)
    assert grafana["healthcheck"]["test"][-1] == f"http://127.0.0.1:{published.container_port}/api/health"


def test_grafana_lets_visitors_view_only(services: dict[str, Any]) -> None:
    env = support.environment(services["grafana"])
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    assert env["GF_USERS_ALLOW_SIGN_UP"] == "false"
    assert env["GF_SECURITY_ADMIN_PASSWORD"] != "admin"
