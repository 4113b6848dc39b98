"""TLS for daphne: the certificate and key from settings, or a self-signed pair for local use.

Daphne (Twisted) takes a server endpoint string; `endpoint()` builds it, so `make run-tls`
serves HTTPS — and with it MCP over HTTPS for clients such as Cursor and Coze — with no proxy.
Behind a reverse proxy that terminates TLS (see deploy/nginx.conf), none of this is needed.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.conf import settings


def self_signed(directory: Path, hosts: list[str]) -> tuple[Path, Path]:
    """A certificate for `hosts` (names or IP addresses) and its key, made once in `directory`."""
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # The key is written owner-only before any byte of it lands on disk.
    descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key_bytes)
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def _escape(value: str) -> str:
    # Twisted endpoint strings separate fields with ':'; a literal one is written '\:'.
    return value.replace("\\", "\\\\").replace(":", "\\:")


def endpoint(*, host: str, port: int) -> tuple[str, Path, bool]:
    """Daphne's `-e` endpoint for HTTPS on host:port, the certificate it serves, and whether it
    is a generated self-signed one."""
    cert = settings.MEMORYHUB_TLS_CERT
    key = settings.MEMORYHUB_TLS_KEY
    generated = cert is None or key is None
    if cert is None or key is None:
        cert_path, key_path = self_signed(settings.DATA_DIR / "tls", [host, "localhost", "127.0.0.1"])
    else:
        cert_path, key_path = Path(cert), Path(key)
    spec = (
        f"ssl:port={port}:interface={_escape(host)}"
        f":privateKey={_escape(str(key_path))}:certKey={_escape(str(cert_path))}"
    )
    return spec, cert_path, generated
