"""What a terminal signs, and how the cloud checks who signed it (the offline proof of identity).

A terminal already holds an X.509 certificate and its private key for IAM Roles Anywhere (the
files the signing helper reads). Its subject names the lane: `CN` is the terminal id and `OU`
the store id (Roles Anywhere maps them to the session tags `x509Subject/CN` and
`x509Subject/OU`, which the terminal's IAM policy pins). With that key the terminal signs each
checkpoint (which covers every record of its range through the hash chain, and each record's
wrapped-key digest through its AAD) and each alarm.

A signed Detail carries `signature`: `{"scheme", "certificate", "value"}` (certificate: the
signer's DER, base64; value: base64). The signature covers the canonical ASCII JSON
(`wire.envelope.canonical_ascii_json`) of the Detail without `signature`, so it survives any
JSON re-encoding on the way. Schemes: `ecdsa-sha256` (EC keys, as Roles Anywhere's P-256 and
P-384 certificates) and `rsa-pkcs1v15-sha256` (RSA keys).

The verifier trusts one or more CA certificates (the trust anchor's) and a list of revoked
serial numbers (the anchor's CRL): the signer's certificate must be issued directly by one of
them, valid at the time of checking, not revoked, and name the store and terminal the Detail
claims.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from wire.envelope import canonical_ascii_json
from wire.errors import WireError
from wire.events import b64decode_strict

SIGNATURE_FIELD = "signature"
ECDSA_SHA256 = "ecdsa-sha256"
RSA_PKCS1V15_SHA256 = "rsa-pkcs1v15-sha256"
SCHEMES = (ECDSA_SHA256, RSA_PKCS1V15_SHA256)

SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class SignatureError(WireError):
    """A signed Detail that does not prove who sent it. Never worth a retry."""

    code = "signature_invalid"


class Unsigned(SignatureError):
    code = "unsigned"


class UntrustedCertificate(SignatureError):
    """The signer's certificate is not issued by the trust anchor, or is not valid now."""

    code = "certificate_untrusted"


class RevokedCertificate(SignatureError):
    code = "certificate_revoked"


class IdentityMismatch(SignatureError):
    """The certificate names another store or terminal than the Detail claims."""

    code = "identity_mismatch"


class SigningKeyError(WireError):
    """The terminal's certificate or key cannot be read, or do not belong together."""

    code = "signing_key_invalid"


@dataclass(frozen=True)
class SignerIdentity:
    """Whom a verified certificate names."""

    store_id: str  # subject OU
    terminal_id: str  # subject CN
    serial: int


def signed_bytes(detail: Mapping[str, Any]) -> bytes:
    """The bytes a signature covers: the Detail without `signature`, canonical ASCII JSON."""
    return canonical_ascii_json({k: v for k, v in detail.items() if k != SIGNATURE_FIELD})


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any, what: str) -> bytes:
    return b64decode_strict(text, f"signature.{what}", SignatureError)


class Signer:
    """A terminal's certificate and private key: signs Details."""

    def __init__(self, certificate: x509.Certificate, key: SigningKey) -> None:
        if _spki(certificate.public_key()) != _spki(key.public_key()):
            raise SigningKeyError("the private key does not belong to the certificate")
        self.certificate = certificate
        self._key = key
        self._certificate_b64 = _b64(certificate.public_bytes(serialization.Encoding.DER))
        self.scheme = (
            ECDSA_SHA256 if isinstance(key, ec.EllipticCurvePrivateKey) else (RSA_PKCS1V15_SHA256)
        )

    @classmethod
    def from_files(cls, certificate_file: Path, private_key_file: Path) -> Signer:
        """PEM files, as the Roles Anywhere signing helper reads them (an unencrypted key)."""
        try:
            certificate = x509.load_pem_x509_certificate(certificate_file.read_bytes())
        except (OSError, ValueError) as error:
            raise SigningKeyError(
                f"cannot read the certificate {certificate_file}: {type(error).__name__}"
            ) from error
        try:
            key = serialization.load_pem_private_key(private_key_file.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as error:
            # never the key's bytes in the message
            raise SigningKeyError(
                f"cannot read the private key {private_key_file}: {type(error).__name__}"
            ) from error
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise SigningKeyError(f"{private_key_file}: only EC and RSA keys can sign")
        return cls(certificate, key)

    def identity(self) -> tuple[str, str]:
        """(store_id, terminal_id) as the certificate names them (OU, CN)."""
        return certificate_identity(self.certificate)

    def sign(self, detail: Mapping[str, Any]) -> dict[str, Any]:
        """The Detail with its `signature`."""
        data = signed_bytes(detail)
        if isinstance(self._key, ec.EllipticCurvePrivateKey):
            value = self._key.sign(data, ec.ECDSA(hashes.SHA256()))
        else:
            value = self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        signature = {
            "scheme": self.scheme,
            "certificate": self._certificate_b64,
            "value": _b64(value),
        }
        return {
            **{k: v for k, v in detail.items() if k != SIGNATURE_FIELD},
            SIGNATURE_FIELD: signature,
        }


def _spki(key: Any) -> bytes:
    return bytes(
        key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def certificate_identity(certificate: x509.Certificate) -> tuple[str, str]:
    """(store_id, terminal_id) as a terminal's certificate names them (OU, CN)."""
    return _subject(certificate, NameOID.ORGANIZATIONAL_UNIT_NAME), _subject(
        certificate, NameOID.COMMON_NAME
    )


def _subject(certificate: x509.Certificate, oid: x509.ObjectIdentifier) -> str:
    values = certificate.subject.get_attributes_for_oid(oid)
    return str(values[0].value) if len(values) == 1 else ""


class Verifier(Protocol):
    """Tells who signed a Detail (`TrustAnchor`, or the cloud's refreshing wrapper of one)."""

    def verify(self, detail: Mapping[str, Any], now: datetime | None = None) -> SignerIdentity: ...


class TrustAnchor:
    """The CAs terminals' certificates are issued by, and the serials revoked (the CRL)."""

    def __init__(
        self, authorities: Iterable[x509.Certificate], revoked_serials: Iterable[int] = ()
    ) -> None:
        self._authorities = list(authorities)
        if not self._authorities:
            raise SigningKeyError("a trust anchor needs at least one CA certificate")
        self._revoked = frozenset(revoked_serials)
        self._checked: dict[bytes, x509.Certificate] = {}  # DER -> its issuer (checked once)

    @classmethod
    def from_pem(cls, ca_pem: bytes, crl: bytes | None = None) -> TrustAnchor:
        """CA certificates (PEM, one or more) and a CRL (PEM or DER) if there is one.

        The CRL's signature is checked against the CAs: a CRL no CA signed is refused."""
        authorities = x509.load_pem_x509_certificates(ca_pem)
        revoked: list[int] = []
        if crl:
            revocations = (
                x509.load_pem_x509_crl(crl)
                if crl.lstrip().startswith(b"-----")
                else x509.load_der_x509_crl(crl)
            )
            if not any(
                revocations.issuer == ca.subject and revocations.is_signature_valid(ca.public_key())  # type: ignore[arg-type]
                for ca in authorities
            ):
                raise SigningKeyError("the CRL is not signed by a trusted CA")
            revoked = [entry.serial_number for entry in revocations]
        return cls(authorities, revoked)

    def verify(self, detail: Mapping[str, Any], now: datetime | None = None) -> SignerIdentity:
        """Who signed this Detail; raises a `SignatureError` unless it proves the identity it
        claims (`store_id`, `terminal_id`)."""
        signature = detail.get(SIGNATURE_FIELD)
        if not isinstance(signature, Mapping):
            raise Unsigned("the detail carries no signature")
        scheme = signature.get("scheme")
        if scheme not in SCHEMES:
            raise SignatureError(f"unknown signature scheme {scheme!r}")
        der = _unb64(signature.get("certificate"), "certificate")
        value = _unb64(signature.get("value"), "value")
        certificate = self._trusted(der, now or datetime.now(UTC))
        identity = SignerIdentity(
            _subject(certificate, NameOID.ORGANIZATIONAL_UNIT_NAME),
            _subject(certificate, NameOID.COMMON_NAME),
            certificate.serial_number,
        )
        if (identity.store_id, identity.terminal_id) != (
            detail.get("store_id"),
            detail.get("terminal_id"),
        ):
            raise IdentityMismatch(
                f"the certificate names {identity.store_id}/{identity.terminal_id}, "
                f"the detail claims {detail.get('store_id')}/{detail.get('terminal_id')}"
            )
        key = certificate.public_key()
        data = signed_bytes(detail)
        try:
            if scheme == ECDSA_SHA256 and isinstance(key, ec.EllipticCurvePublicKey):
                key.verify(value, data, ec.ECDSA(hashes.SHA256()))
            elif scheme == RSA_PKCS1V15_SHA256 and isinstance(key, rsa.RSAPublicKey):
                key.verify(value, data, padding.PKCS1v15(), hashes.SHA256())
            else:
                raise SignatureError(f"scheme {scheme} does not fit the certificate's key")
        except InvalidSignature as error:
            raise SignatureError("the signature does not match the detail") from error
        return identity

    def _trusted(self, der: bytes, now: datetime) -> x509.Certificate:
        try:
            certificate = x509.load_der_x509_certificate(der)
        except ValueError as error:
            raise UntrustedCertificate(
                "signature.certificate is not an X.509 certificate"
            ) from error
        if certificate.serial_number in self._revoked:
            raise RevokedCertificate(f"certificate serial {certificate.serial_number:x} is revoked")
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise UntrustedCertificate("the signer's certificate is not valid at this time")
        if der in self._checked:
            return certificate
        for authority in self._authorities:
            try:
                certificate.verify_directly_issued_by(authority)
            except (ValueError, TypeError, InvalidSignature):
                continue
            self._checked[der] = authority
            return certificate
        raise UntrustedCertificate("the signer's certificate is not issued by the trust anchor")
