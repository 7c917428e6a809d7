"""Settings from the environment and EDGE_CONFIG, and ``python -m edge`` as a real process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from edge.settings import EdgeSettings
from tests.hasura_double import HasuraDouble
from tests.support.servers import free_loopback_socket
from tests.support.tokens import HS256_KEY, JWT_SECRET_JSON, mint

ROOT = Path(__file__).resolve().parents[2]


def test_environment_variables_with_the_edge_prefix(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("EDGE_HASURA_URL", "http://hasura:8080/")
    monkeypatch.setenv("EDGE_HASURA_ADMIN_SECRET", "a-real-secret")
    monkeypatch.setenv("EDGE_UNAUTHORIZED_ROLE", "anonymous")
    monkeypatch.setenv("EDGE_ALLOWED_ORIGINS", "https://a.example, https://b.example:8443")
    monkeypatch.setenv("EDGE_PORT", "9000")
    settings = EdgeSettings()
    assert settings.hasura_base_url == "http://hasura:8080"
    assert settings.allowed_origins == ["https://a.example", "https://b.example:8443"]
    assert settings.port == 9000
    assert settings.jwt_configs == ()


def test_yaml_file_named_by_edge_config_is_read_below_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    config = tmp_path / "edge.yaml"
    config.write_text(
        "hasura_url: http://from-yaml:8080\nhasura_admin_secret: yaml-secret\nunauthorized_role: anonymous\n"
        "allowed_origins: [https://yaml.example]\nport: 7000\n"
    )
    monkeypatch.setenv("EDGE_CONFIG", str(config))
    monkeypatch.setenv("EDGE_PORT", "7100")
    settings = EdgeSettings()
    assert settings.hasura_base_url == "http://from-yaml:8080"
    assert settings.allowed_origins == ["https://yaml.example"]
    assert settings.port == 7100


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"hasura_admin_secret": "changeme"}, "placeholder"),
        ({"allowed_origins": "*"}, "wildcard"),
        ({"allowed_origins": "https://a.example/path"}, "no wildcard or path"),
        ({"jwt_secret": json.dumps({"type": "HS256"})}, "jwk_url"),
        ({"jwt_secret": None, "unauthorized_role": None}, "EDGE_JWT_SECRET"),
    ],
)
def test_invalid_settings_fail_with_a_clear_message(overrides: dict[str, object], fragment: str):
    values: dict[str, object] = {
        "hasura_url": "http://hasura:8080",
        "hasura_admin_secret": "a-real-secret",
        "jwt_secret": JWT_SECRET_JSON,
    }
    values.update(overrides)
    with pytest.raises(ValidationError) as raised:
        EdgeSettings(**values)
    assert fragment in str(raised.value)


def test_a_short_hs_key_is_refused_without_echoing_it():
    with pytest.raises(ValidationError) as raised:
        EdgeSettings(
            hasura_url="http://hasura:8080",
            hasura_admin_secret="a-real-secret",
            jwt_secret=json.dumps({"type": "HS256", "key": "short-key-xyz"}),
        )
    assert "short-key-xyz" not in str(raised.value)


def run_edge_process(env: dict[str, str]) -> subprocess.Popen[bytes]:
    full_env = {key: value for key, value in os.environ.items() if not key.startswith("EDGE_")}
    full_env.update(env)
    return subprocess.Popen(
        [sys.executable, "-m", "edge"], cwd=ROOT, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def test_python_m_edge_serves_graphql(hasura_url: str, hasura: HasuraDouble):
    sock = free_loopback_socket()
    port = sock.getsockname()[1]
    sock.close()
    process = run_edge_process(
        {
            "EDGE_HASURA_URL": hasura_url,
            "EDGE_HASURA_ADMIN_SECRET": "double-admin-secret-for-tests",
            "EDGE_JWT_SECRET": JWT_SECRET_JSON,
            "EDGE_PORT": str(port),
        }
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            assert time.monotonic() < deadline, "python -m edge did not start"
            time.sleep(0.1)
        response = httpx.post(
            f"http://127.0.0.1:{port}/graphql",
            json={"query": "{ products(limit: 1) { id } }"},
            headers={"Authorization": f"Bearer {mint()}"},
        )
        assert response.status_code == 200
        assert response.json()["data"]["products"][0]["id"]
        assert hasura.last().session is not None
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=20)
    # The edge shuts down gracefully, then re-raises SIGTERM so the exit status tells why it stopped.
    assert process.returncode == -signal.SIGTERM
    assert b"Traceback" not in stderr
    assert HS256_KEY.encode() not in stderr


def test_python_m_edge_refuses_a_bad_configuration_without_leaking_secrets():
    process = run_edge_process(
        {
            "EDGE_HASURA_URL": "not a url",
            "EDGE_HASURA_ADMIN_SECRET": "super-secret-value",
            "EDGE_JWT_SECRET": json.dumps({"type": "HS256", "key": "too-short-secret"}),
        }
    )
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 2
    text = stderr.decode()
    assert "invalid configuration" in text
    assert "EDGE_HASURA_URL: Input should be a valid URL" in text
    assert "Traceback" not in text
    assert "super-secret-value" not in text
    assert "too-short-secret" not in text


def _free_port() -> str:
    sock = free_loopback_socket()
    port = sock.getsockname()[1]
    sock.close()
    return str(port)


def _serving_env(hasura_url: str, **extra: str) -> dict[str, str]:
    return {
        "EDGE_PORT": _free_port(),
        "EDGE_HASURA_URL": hasura_url,
        "EDGE_HASURA_ADMIN_SECRET": "double-admin-secret-for-tests",
        "EDGE_JWT_SECRET": JWT_SECRET_JSON,
        **extra,
    }


def test_python_m_edge_names_the_setting_when_its_port_is_taken(hasura_url: str):
    busy = free_loopback_socket()
    busy.listen()
    try:
        process = run_edge_process(_serving_env(hasura_url, EDGE_PORT=str(busy.getsockname()[1])))
        _, stderr = process.communicate(timeout=30)
    finally:
        busy.close()
    assert process.returncode == 2
    lines = stderr.decode().strip().splitlines()
    assert len(lines) == 1, stderr.decode()
    assert lines[0].startswith("hasura-edge: EDGE_HOST / EDGE_PORT: cannot listen on 127.0.0.1:")


def test_python_m_edge_names_the_settings_when_the_tls_files_cannot_be_read(hasura_url: str, tmp_path: Path):
    key = tmp_path / "key.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    process = run_edge_process(
        _serving_env(hasura_url, EDGE_TLS_CERT_FILE=str(tmp_path / "missing.pem"), EDGE_TLS_KEY_FILE=str(key))
    )
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 2
    lines = stderr.decode().strip().splitlines()
    assert len(lines) == 1, stderr.decode()
    assert lines[0].startswith("hasura-edge: EDGE_TLS_CERT_FILE / EDGE_TLS_KEY_FILE: cannot load")
    assert "bm90IGEga2V5" not in stderr.decode()


def test_python_m_edge_serves_metrics_on_the_port_it_bound_before_start_up(hasura_url: str):
    metrics_port = _free_port()
    process = run_edge_process(_serving_env(hasura_url, EDGE_METRICS_PORT=metrics_port))
    try:
        assert process.stderr is not None
        seen = []
        for line in process.stderr:  # the log line written once both ports serve
            seen.append(line)
            if b'"edge_listening"' in line:
                break
        else:
            pytest.fail(b"".join(seen).decode())
        response = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10)
        assert response.status_code == 200
        assert "edge_requests_total" in response.text
    finally:
        process.terminate()
        process.communicate(timeout=20)
    assert process.returncode == -signal.SIGTERM
