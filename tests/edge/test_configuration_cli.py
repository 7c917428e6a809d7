"""``python -m edge`` as a process: invalid configurations end in exit 2 with one line per problem, never a
traceback or a secret; ``check-config`` validates without serving; ``--help``/``--version`` need no configuration."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from edge.build_info import compiled_modules
from edge.graphql.manifest import build_from_graphql_files
from tests.support.servers import free_loopback_socket
from tests.support.tokens import JWT_SECRET_JSON

ROOT = Path(__file__).resolve().parents[2]
SECRET = "admin-secret-that-must-never-be-printed"
METADATA_DIR = ROOT / "hasura" / "metadata"


def run_edge(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m edge ARGS`` with only the given EDGE_* variables (timeout: a guard against a hang)."""
    full_env = {key: value for key, value in os.environ.items() if not key.upper().startswith("EDGE_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "edge", *args], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=120
    )


def valid_env(**extra: str) -> dict[str, str]:
    return {
        "EDGE_HASURA_URL": "http://127.0.0.1:9",
        "EDGE_HASURA_ADMIN_SECRET": SECRET,
        "EDGE_JWT_SECRET": JWT_SECRET_JSON,
        **extra,
    }


def problem_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The problem lines after the header; asserts the shape every invalid configuration shares."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert SECRET not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if not line.startswith("hasura-edge: warning: ")]
    count = len(lines) - 1
    assert lines[0] == f"hasura-edge: invalid configuration ({count} problem{'s' if count > 1 else ''}):"
    assert all(line.startswith("hasura-edge: ") for line in lines)
    return [line.removeprefix("hasura-edge: ") for line in lines[1:]]


def free_port() -> str:
    sock = free_loopback_socket()
    port = sock.getsockname()[1]
    sock.close()
    return str(port)


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


# --- Help and version -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--help",), "usage: python -m edge "),
        (("-h",), "usage: python -m edge "),
        (("keys", "--help"), "usage: python -m edge keys"),
        (("keys", "create", "--help"), "usage: python -m edge keys create"),
        (("keys", "rotate", "-h"), "usage: python -m edge keys rotate"),
        (("manifest", "--help"), "usage: python -m edge manifest"),
        (("manifest", "build", "--help"), "usage: python -m edge manifest build"),
        (("check-config", "--help"), "usage: python -m edge check-config"),
        (("db", "--help"), "usage: python -m edge db"),
        (("--version",), "hasura-edge "),
        (("keys", "--version"), "hasura-edge "),
        (("check-config", "--version"), "hasura-edge "),
        (("db", "--version"), "hasura-edge "),
        (("manifest", "--version"), "hasura-edge "),
    ],
)
def test_help_and_version_need_no_configuration(args: tuple[str, ...], expected: str):
    result = run_edge(*args, env={})  # not one EDGE_* variable
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(expected)
    assert result.stderr == ""


def test_version_names_the_installed_version_and_the_build():
    compiled = len(compiled_modules())
    build = f"request path compiled ({compiled} modules)" if compiled else "interpreted"
    assert run_edge("--version").stdout == f"hasura-edge {version('hasura-edge')} ({build})\n"


def test_an_unknown_command_is_a_usage_error():
    result = run_edge("serve-please", env={})
    assert result.returncode == 2
    assert result.stderr.startswith("usage: python -m edge")


# --- The EDGE_CONFIG file, for every command that reads the settings ------------------------

COMMANDS = [(), ("check-config",), ("keys", "list")]


@pytest.mark.parametrize("command", COMMANDS)
def test_a_yaml_syntax_error_names_the_line_and_column(tmp_path: Path, command: tuple[str, ...]):
    path = write(tmp_path, "edge.yaml", f"hasura_admin_secret: {SECRET}\nplans:\n  free: {{rate: [1, 2}}\n")
    problems = problem_lines(run_edge(*command, env=valid_env(EDGE_CONFIG=path)))
    assert len(problems) == 1
    assert problems[0].startswith(f"EDGE_CONFIG: {path}: line 3, column 21: invalid YAML: ")


@pytest.mark.parametrize("command", COMMANDS)
def test_a_missing_config_file_is_named(tmp_path: Path, command: tuple[str, ...]):
    path = str(tmp_path / "nowhere.yaml")
    problems = problem_lines(run_edge(*command, env=valid_env(EDGE_CONFIG=path)))
    assert problems == [f"EDGE_CONFIG: {path}: cannot be read (No such file or directory)"]


def test_an_unreadable_config_file_is_named(tmp_path: Path):
    problems = problem_lines(run_edge(env=valid_env(EDGE_CONFIG=str(tmp_path))))  # a directory
    assert problems == [f"EDGE_CONFIG: {tmp_path}: cannot be read (Is a directory)"]


def test_a_config_file_that_is_not_a_mapping_is_refused(tmp_path: Path):
    path = write(tmp_path, "edge.yaml", "just a sentence\n")
    problems = problem_lines(run_edge(env=valid_env(EDGE_CONFIG=path)))
    assert problems == [f"EDGE_CONFIG: {path}: must be a YAML mapping of setting names to values, not a single value"]


@pytest.mark.parametrize("command", COMMANDS)
def test_misspelt_keys_are_refused_with_a_suggestion(tmp_path: Path, command: tuple[str, ...]):
    path = write(
        tmp_path,
        "edge.yaml",
        "trusted_proxy: [10.0.0.0/8]\nplans:\n  default:\n    rate: {requests_per_second: 1, burst: 1, brust: 2}\n",
    )
    problems = problem_lines(run_edge(*command, env=valid_env(EDGE_CONFIG=path)))
    assert problems == [
        f"{path}: plans.default.rate.brust: unknown key (did you mean burst?)",
        f"{path}: trusted_proxy: unknown setting (did you mean trusted_proxies?)",
    ]


@pytest.mark.parametrize("command", COMMANDS)
def test_invalid_values_name_the_variable_or_the_yaml_path(tmp_path: Path, command: tuple[str, ...]):
    path = write(tmp_path, "edge.yaml", "plans:\n  default:\n    rate: {requests_per_second: 0, burst: 1}\n")
    env = valid_env(EDGE_CONFIG=path, EDGE_HASURA_URL="not a url", EDGE_JWT_SECRET=json.dumps({"type": "HS256"}))
    problems = problem_lines(run_edge(*command, env=env))
    assert problems == [
        "EDGE_HASURA_URL: Input should be a valid URL, relative URL without a base",
        "EDGE_JWT_SECRET: key and jwk_url both cannot be empty",
        f"{path}: plans.default.rate.requests_per_second: Input should be greater than 0",
    ]


def test_unknown_edge_variables_are_warned_about_not_refused():
    result = run_edge("check-config", env=valid_env(EDGE_TRUSTED_PROXY="10.0.0.0/8"))
    assert result.returncode == 0, result.stderr
    assert result.stderr == (
        "hasura-edge: warning: EDGE_TRUSTED_PROXY is not a setting and is ignored "
        "(did you mean EDGE_TRUSTED_PROXIES?)\n"
    )


# --- check-config ---------------------------------------------------------------------------


def test_check_config_summarises_a_valid_configuration_without_secrets(tmp_path: Path):
    operations = tmp_path / "operations.graphql"
    operations.write_text("query Products { products { id } }\n")
    manifest = write(tmp_path, "manifest.json", build_from_graphql_files([operations]).to_json())
    config = write(
        tmp_path,
        "edge.yaml",
        f"plans:\n  free: {{graphql: {{safelist: true}}}}\n  default: {{}}\njwt_plan: free\n"
        f"persisted_manifest_file: {manifest}\nhasura_metadata_dir: {METADATA_DIR}\n",
    )
    env = valid_env(
        EDGE_CONFIG=config,
        EDGE_HASURA_URL="http://edge-user:url-password@hasura:8080",
        EDGE_DATABASE_URL="postgresql://edge:db-password@db/edge",
        EDGE_METRICS_PORT="9100",
    )
    result = run_edge("check-config", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0] == "configuration ok"
    assert f"  EDGE_CONFIG: {config} (4 setting(s))" in lines
    assert "  hasura: http://hasura:8080, client lean" in lines
    assert "  identity: JWT (1 config(s)), API keys (EDGE_DATABASE_URL)" in lines
    assert "  plans: default, free (with JWT: free, without credentials: default)" in lines
    assert "  persisted-operations manifest: 1 operation(s)" in lines
    assert "  metrics: on 127.0.0.1:9100" in lines
    assert any(line.startswith("  hasura metadata: row limits for ") for line in lines)
    assert any(re.fullmatch(r"  hasura metadata: [1-9]\d* REST endpoint\(s\)", line) for line in lines)  # the demo's
    for secret in (SECRET, "url-password", "db-password", "edge-user"):
        assert secret not in result.stdout


def test_check_config_loads_every_file_the_settings_name(tmp_path: Path):
    key = write(tmp_path, "key.pem", "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    manifest = write(tmp_path, "manifest.json", '{"format": "apollo-persisted-query-manifest", "version": 1}')
    env = valid_env(
        EDGE_TLS_CERT_FILE=str(tmp_path / "missing.pem"),
        EDGE_TLS_KEY_FILE=key,
        EDGE_PERSISTED_MANIFEST_FILE=manifest,
        EDGE_HASURA_METADATA_DIR=str(tmp_path),
        EDGE_METRICS_PORT="8000",
    )
    result = run_edge("check-config", env=env)
    problems = problem_lines(result)
    assert problems == [
        "EDGE_TLS_CERT_FILE / EDGE_TLS_KEY_FILE: cannot load the certificate and key: No such file or directory",
        "EDGE_METRICS_PORT: the same port as EDGE_PORT (8000)",
        f"EDGE_PERSISTED_MANIFEST_FILE: {manifest}: 'operations' must be a list",
        f"EDGE_HASURA_METADATA_DIR: missing metadata file: {tmp_path / 'databases' / 'databases.yaml'}",
    ]
    assert "bm90IGEga2V5" not in result.stderr


def test_check_config_names_the_yaml_key_of_a_file_given_there(tmp_path: Path):
    config = write(tmp_path, "edge.yaml", f"hasura_metadata_dir: {tmp_path / 'absent'}\n")
    problems = problem_lines(run_edge("check-config", env=valid_env(EDGE_CONFIG=config)))
    assert problems == [
        f"{config}: hasura_metadata_dir: missing metadata file: {tmp_path / 'absent' / 'databases' / 'databases.yaml'}"
    ]


def test_check_config_neither_listens_nor_connects_anywhere():
    # Every address the settings name is one listening socket of this test: nothing may connect to it.
    listener = free_loopback_socket()
    listener.listen()
    address = f"127.0.0.1:{listener.getsockname()[1]}"
    jwks = json.dumps({"jwk_url": f"http://{address}/jwks.json"})
    env = valid_env(
        EDGE_PORT=str(listener.getsockname()[1]),  # taken: serving would fail, checking must not
        EDGE_HASURA_URL=f"http://{address}",
        EDGE_JWT_SECRET=jwks,
        EDGE_REDIS_URL=f"redis://{address}/0",
        EDGE_DATABASE_URL=f"postgresql://edge@{address}/edge",
        EDGE_AUTHORIZER_URL=f"http://{address}/auth",
    )
    try:
        result = run_edge("check-config", env=env)
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()
    finally:
        listener.close()
    assert result.returncode == 0, result.stderr
    assert "  identity: JWT (1 config(s), 1 with jwk_url), authorizer webhook (GET), API keys" in result.stdout


# --- Serving ---------------------------------------------------------------------------------


def test_serving_with_an_invalid_manifest_exits_2_naming_the_setting(tmp_path: Path):
    manifest = write(tmp_path, "manifest.json", "[]")
    result = run_edge(env=valid_env(EDGE_PORT=free_port(), EDGE_PERSISTED_MANIFEST_FILE=manifest))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"hasura-edge: EDGE_PERSISTED_MANIFEST_FILE: {manifest}: must be a JSON object"
    ]


def test_serving_with_an_unreadable_metadata_directory_exits_2_naming_the_setting(tmp_path: Path):
    (tmp_path / "databases").mkdir()
    (tmp_path / "databases" / "databases.yaml").write_text("- name: default\n  tables: [{table: 3}]\n")
    result = run_edge(env=valid_env(EDGE_PORT=free_port(), EDGE_HASURA_METADATA_DIR=str(tmp_path)))
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("hasura-edge: EDGE_HASURA_METADATA_DIR: ")


def test_serving_with_a_busy_metrics_port_exits_2_naming_it():
    busy = free_loopback_socket()
    busy.listen()
    port = busy.getsockname()[1]
    try:
        result = run_edge(env=valid_env(EDGE_PORT=free_port(), EDGE_METRICS_PORT=str(port)))
    finally:
        busy.close()
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"hasura-edge: EDGE_METRICS_HOST / EDGE_METRICS_PORT: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]


def test_keys_with_a_valid_configuration_but_no_database_names_the_setting():
    result = run_edge("keys", "list", env=valid_env())
    assert result.returncode == 2
    assert result.stderr == "hasura-edge: EDGE_DATABASE_URL is required to manage API keys\n"
