"""A local certificate authority: stands in for the store chain's Roles Anywhere trust anchor.

In production a chain's private CA (or AWS Private CA) issues each terminal an X.509
certificate whose subject is `CN=<terminal_id>, OU=<store_id>`; the terminal keeps it and its
key where the Roles Anywhere signing helper reads them. Here the demo and the tests issue the
same kind of certificate with cryptography's x509 builder, write the PEM files a terminal's
config names, and hand the consumer the CA (and a CRL) as its trust anchor.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from wire.signing import Signer, TrustAnchor

VALID_DAYS = 365
CA_NAME = "posd demo chain CA"
PRIVATE_FILE_MODE = 0o600


def _name(common_name: str, unit: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "posd demo chain")]
    if unit is not None:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class TerminalCredentials:
    """A terminal's certificate and key, and where their PEM files are (if written)."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    certificate_file: Path | None = None
    private_key_file: Path | None = None

    def signer(self) -> Signer:
        return Signer(self.certificate, self.key)

    def write(self, directory: Path) -> TerminalCredentials:
        """`terminal.pem` and `terminal.key` (0600) in `directory`."""
        directory.mkdir(parents=True, exist_ok=True)
        self.certificate_file = directory / "terminal.pem"
        self.private_key_file = directory / "terminal.key"
        self.certificate_file.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))
        descriptor = os.open(
            self.private_key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE
        )
        with os.fdopen(descriptor, "wb") as out:
            out.write(
                self.key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
        return self


@dataclass
class LocalCa:
    """A self-signed CA that issues terminal certificates and a CRL."""

    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    certificate: x509.Certificate = field(init=False)

    def __post_init__(self) -> None:
        name = _name(CA_NAME)
        now = _now()
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self.key, hashes.SHA256())
        )

    def issue(
        self,
        store_id: str,
        terminal_id: str,
        not_before: dt.datetime | None = None,
        valid_for: dt.timedelta = dt.timedelta(days=VALID_DAYS),
    ) -> TerminalCredentials:
        """A terminal's certificate (`CN=terminal_id, OU=store_id`) and its new P-256 key."""
        key = ec.generate_private_key(ec.SECP256R1())
        start = not_before or _now() - dt.timedelta(minutes=5)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(terminal_id, store_id))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + valid_for)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return TerminalCredentials(certificate, key)

    def ca_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def crl_pem(self, revoked: Iterable[x509.Certificate] = ()) -> bytes:
        """A CRL revoking `revoked` (what `AWS::RolesAnywhere::CRL` would be given)."""
        now = _now()
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certificate.subject)
            .last_update(now)
            .next_update(now + dt.timedelta(days=7))
        )
        for certificate in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(certificate.serial_number)
                .revocation_date(now)
                .build()
            )
        return builder.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)

    def trust_anchor(self, revoked: Iterable[x509.Certificate] = ()) -> TrustAnchor:
        revoked = list(revoked)
        return TrustAnchor.from_pem(self.ca_pem(), self.crl_pem(revoked) if revoked else None)
