"""The client certificate for mutual TLS: PEM or PKCS#12, from a path or a secret, with a password.

Serviceplatformen authenticates the caller by its system certificate (FOCES/OCES3
organisation certificate) registered on the anvendersystem. Installations keep it in one of
two shapes, and either by path or behind a secret reference:

- a PEM certificate (with its chain) and a PEM private key, the key possibly encrypted;
- a PKCS#12 bundle (``.p12``/``.pfx``) holding both, with a password.

:func:`load_client_identity` reads and checks the material once, with errors that name the
setting and never the secret; :func:`identity_files` writes it as the PEM files Python's
``ssl`` module loads, into a private directory that exists only while a TLS context is built.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import socket
import ssl
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12

from bridge.errors import ConfigError

log = logging.getLogger("bridge.dubu")

EXPIRY_WARNING = timedelta(days=30)
"""A client certificate that expires sooner than this is logged as a warning on every run."""


@dataclass(frozen=True)
class ClientIdentity:
    """A client certificate chain and its private key, checked to belong together."""

    certificates: tuple[x509.Certificate, ...]
    key: PrivateKeyTypes

    @property
    def certificate(self) -> x509.Certificate:
        return self.certificates[0]

    def describe(self) -> str:
        """Subject and expiry, for messages: no key material."""
        return (
            f"{self.certificate.subject.rfc4514_string()}, valid until {self.certificate.not_valid_after_utc:%Y-%m-%d}"
        )


def _read(path: Path, setting: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{setting}: cannot read {path}: {exc.strerror}") from None


def _password(password: str | None) -> bytes | None:
    return None if password is None else password.encode()


def _pem_key(data: bytes, password: str | None, setting: str) -> PrivateKeyTypes:
    try:
        return serialization.load_pem_private_key(data, _password(password))
    except TypeError:
        # cryptography says TypeError when a password is given for a plain key, or none for an encrypted one.
        if password is None:
            raise ConfigError(f"{setting}: the private key is encrypted; set client_key_password") from None
        raise ConfigError(f"{setting}: the private key is not encrypted, but client_key_password is set") from None
    except ValueError:
        raise ConfigError(f"{setting}: not a PEM private key, or client_key_password does not decrypt it") from None


def _pem_certificates(data: bytes, setting: str) -> tuple[x509.Certificate, ...]:
    try:
        certificates = tuple(x509.load_pem_x509_certificates(data))
    except ValueError:
        raise ConfigError(f"{setting}: not a PEM certificate") from None
    return certificates


def load_client_identity(
    *,
    cert: Path | None = None,
    key: Path | None = None,
    key_pem: str | None = None,
    pkcs12_file: Path | None = None,
    pkcs12_base64: str | None = None,
    password: str | None = None,
) -> ClientIdentity:
    """Read the client certificate and key from exactly one of the accepted shapes.

    PEM: ``cert`` (a file; the chain may follow the certificate) with ``key`` (a file) or
    ``key_pem`` (the key's text, from a secret). PKCS#12: ``pkcs12_file`` or ``pkcs12_base64``
    (the bundle base64-encoded, from a secret). ``password`` decrypts the key or the bundle.
    Raises :class:`ConfigError` naming the setting for anything that does not fit.
    """
    if pkcs12_file is not None or pkcs12_base64 is not None:
        if pkcs12_file is not None:
            data, setting = _read(pkcs12_file, "client_pkcs12"), "client_pkcs12"
        else:
            setting = "client_pkcs12_base64"
            try:
                data = base64.b64decode("".join((pkcs12_base64 or "").split()), validate=True)
            except (binascii.Error, ValueError):
                raise ConfigError(f"{setting}: not base64 text") from None
        try:
            bundle = pkcs12.load_pkcs12(data, _password(password))
        except ValueError:
            raise ConfigError(f"{setting}: not a PKCS#12 bundle, or client_key_password does not open it") from None
        if bundle.key is None or bundle.cert is None:
            raise ConfigError(f"{setting}: the bundle must hold the client certificate and its private key")
        identity = ClientIdentity(
            (bundle.cert.certificate, *(c.certificate for c in bundle.additional_certs)), bundle.key
        )
    else:
        if cert is None or (key is None and key_pem is None):
            raise ConfigError("client_cert needs client_key (a file) or client_key_pem (the key from a secret)")
        certificates = _pem_certificates(_read(cert, "client_cert"), "client_cert")
        if key is not None:
            private_key = _pem_key(_read(key, "client_key"), password, "client_key")
        else:
            private_key = _pem_key((key_pem or "").encode(), password, "client_key_pem")
        identity = ClientIdentity(certificates, private_key)
    _check_pair(identity)
    return identity


def _public_bytes(key: object) -> bytes:
    public_bytes = getattr(key, "public_bytes")  # noqa: B009 - every public key type has it, typed separately
    data: bytes = public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return data


def _check_pair(identity: ClientIdentity) -> None:
    if _public_bytes(identity.certificate.public_key()) != _public_bytes(identity.key.public_key()):
        raise ConfigError("the client certificate and the private key do not belong together")
    now = datetime.now(UTC)
    expires = identity.certificate.not_valid_after_utc
    if expires < now:
        raise ConfigError(f"the client certificate expired on {expires:%Y-%m-%d} ({identity.describe()})")
    if expires - now < EXPIRY_WARNING:
        log.warning(
            "the DUBU client certificate expires on %s; renew it in time (%s)",
            f"{expires:%Y-%m-%d}",
            identity.describe(),
        )


@contextmanager
def identity_files(identity: ClientIdentity) -> Iterator[tuple[str, str]]:
    """``(certificate file, key file)`` in PEM for ``ssl.SSLContext.load_cert_chain``, while the block runs.

    The key is written unencrypted, because the TLS context is built by loading files; the
    directory is private to this process's user (mode 0700) and removed when the block ends,
    so the key exists on disk only while the context loads it.
    """
    with tempfile.TemporaryDirectory(prefix="bridge-dubu-tls-") as directory:
        os.chmod(directory, 0o700)
        cert_path = Path(directory) / "client.pem"
        key_path = Path(directory) / "client.key"
        cert_path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in identity.certificates))
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(
                identity.key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
            )
        yield str(cert_path), str(key_path)


def issuer_of(identity: ClientIdentity) -> str:
    return identity.certificate.issuer.rfc4514_string()


def refused_after_handshake(
    host: str, port: int, *, ca_bundle: str | None, identity: ClientIdentity | None, timeout: float = 10.0
) -> str | None:
    """Whether the server takes the TLS handshake and then hangs up on a request: how a server
    that checks client certificates after a TLS 1.3 handshake refuses one it does not accept.

    Returns what the server said (a TLS alert's name, or that it closed the connection), or
    ``None`` if it answered the request, or if the handshake itself failed (that is not a
    refusal of our certificate). Used to explain a first call that failed at the connection.
    """
    context = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else ssl.create_default_context()
    with ExitStack() as stack:
        if identity is not None:
            context.load_cert_chain(*stack.enter_context(identity_files(identity)))
    request = f"POST / HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=host) as connection,
        ):
            try:
                connection.sendall(request)
                answer = connection.recv(1)
            except ssl.SSLError as exc:
                return f"the TLS alert {exc.reason}" if exc.reason else "a TLS error"
            except OSError:
                return "it closed the connection"
            return None if answer else "it closed the connection"
    except (OSError, ssl.SSLError):
        return None
