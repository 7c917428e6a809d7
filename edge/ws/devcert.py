"""A development CA and server certificate, so the compose demo serves https and wss.

``python -m edge.ws.devcert DIR [--hosts localhost,edge,127.0.0.1] [--owner 10001:10001]`` writes, only
when they are missing:

- ``DIR/ca.pem``: a throwaway CA (trust it in a client: ``SSL_CERT_FILE``, ``--cacert``, ``NODE_EXTRA_CA_CERTS``);
- ``DIR/edge.pem`` + ``DIR/edge-key.pem``: a certificate for the hosts, signed by that CA (825 days).

The CA key is not kept on disk: a new certificate means a new CA. Never use these outside development.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["DevCertificate", "make_certificate", "write_if_missing"]


class DevCertificate:
    def __init__(self, ca_pem: bytes, cert_pem: bytes, key_pem: bytes) -> None:
        self.ca_pem = ca_pem
        self.cert_pem = cert_pem
        self.key_pem = key_pem


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_certificate(hosts: Sequence[str], *, days: int = 825) -> DevCertificate:
    """A CA plus a server certificate for ``hosts`` (DNS names or IP addresses)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("hasura-edge development CA"))
        .issuer_name(_name("hasura-edge development CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return DevCertificate(
        ca.public_bytes(serialization.Encoding.PEM),
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )


def write_if_missing(directory: Path, hosts: Sequence[str], *, owner: tuple[int, int] | None = None) -> bool:
    """Write ``ca.pem``, ``edge.pem``, ``edge-key.pem`` unless all exist; True when written.

    ``owner`` (uid, gid): chown the files (the compose init container runs as root, the edge does not).
    """
    files = [directory / "ca.pem", directory / "edge.pem", directory / "edge-key.pem"]
    if all(path.exists() for path in files):
        return False
    directory.mkdir(parents=True, exist_ok=True)
    made = make_certificate(hosts)
    files[0].write_bytes(made.ca_pem)
    files[1].write_bytes(made.cert_pem)
    files[2].touch(mode=0o600)
    files[2].write_bytes(made.key_pem)
    if owner is not None:
        for path in files:
            os.chown(path, *owner)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge.ws.devcert", description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--hosts", default="localhost,edge,127.0.0.1,::1")
    parser.add_argument("--owner", help="uid:gid to own the files (when run as root for another user)")
    args = parser.parse_args(argv)
    hosts = [host.strip() for host in args.hosts.split(",") if host.strip()]
    owner = None
    if args.owner:
        uid, _, gid = args.owner.partition(":")
        owner = (int(uid), int(gid or uid))
    written = write_if_missing(args.directory, hosts, owner=owner)
    sys.stderr.write(f"{'wrote' if written else 'kept'} development certificate in {args.directory}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
