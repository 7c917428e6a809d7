"""The development certificate (``python -m edge.ws.devcert``) and the compose TLS override."""

from __future__ import annotations

import ssl
from pathlib import Path

from edge.ws.devcert import main

ROOT = Path(__file__).resolve().parents[3]


def test_devcert_writes_a_chain_a_client_trusts_and_keeps_it(tmp_path: Path) -> None:
    assert main([str(tmp_path / "certs"), "--hosts", "localhost,127.0.0.1"]) == 0
    ca, cert, key = (tmp_path / "certs" / name for name in ("ca.pem", "edge.pem", "edge-key.pem"))
    assert key.stat().st_mode & 0o777 == 0o600
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(ca))
    assert client.cert_store_stats()["x509_ca"] == 1
    before = cert.read_bytes()
    main([str(tmp_path / "certs")])
    assert cert.read_bytes() == before  # never regenerated while present
