"""The terminal's identity: its IAM Roles Anywhere certificate and key, which sign side events.

`[identity]` names the PEM files the Roles Anywhere signing helper reads. The daemon signs each
checkpoint and alarm with that key (`wire.signing`), so the cloud believes them only from this
lane. The files are checked when the config loads: both readable, the key unencrypted, private
to its owner and the certificate's, and the certificate naming this config's lane
(`OU` = store_id, `CN` = terminal_id). Its validity dates are not: an expired certificate
stops the cloud from proving this lane's checkpoints, never the lane from taking payments
(`posd doctor` counts the days left).

No message ever holds key bytes: a key that does not parse is named by its path and what is
wrong with it.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import structlog
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from posd.errors import ConfigError
from wire.signing import Signer, SigningKeyError, certificate_identity

SECTION = "identity"
CERTIFICATE_KEY = "identity.certificate_file"
PRIVATE_KEY_KEY = "identity.private_key_file"
# Bits of the key file's mode that let anyone but its owner read or change it (as ssh refuses).
GROUP_OTHER_BITS = 0o077
PRIVATE_KEY_MODE = 0o600
SECONDS_PER_DAY = 86_400
# Renew this long before expiry: a lane may be offline for days, and the CA's issuing takes time.
RENEW_WARN_DAYS = 30

log = structlog.get_logger("posd.identity")


@dataclass(frozen=True)
class IdentitySettings:
    """`[identity]`: the certificate and private key (PEM files, unencrypted key) the Roles
    Anywhere signing helper reads; relative paths are relative to the config file.

    Both or neither. Required in production; in development, without them checkpoints and
    alarms go unsigned and the cloud proves none of this lane's ranges. (A key kept in a
    PKCS#11 token or a TPM would be one more way to name the key here, later.)
    """

    certificate_file: Path | None = None
    private_key_file: Path | None = None

    def __post_init__(self) -> None:
        if self.certificate_file is not None and self.private_key_file is None:
            raise ValueError("private_key_file: required with certificate_file")
        if self.private_key_file is not None and self.certificate_file is None:
            raise ValueError("certificate_file: required with private_key_file")

    @property
    def configured(self) -> bool:
        return self.certificate_file is not None


def _cause(error: OSError | ValueError) -> str:
    return (error.strerror if isinstance(error, OSError) else None) or str(error)


def _read(path: Path, config_path: Path, key: str, what: str) -> bytes:
    try:
        return path.read_bytes()
    except (OSError, ValueError) as error:  # ValueError: a NUL in the path
        raise ConfigError(
            str(config_path), key, f"cannot read the {what} {path}: {_cause(error)}"
        ) from None


def _certificate(path: Path, config_path: Path) -> x509.Certificate:
    data = _read(path, config_path, CERTIFICATE_KEY, "certificate")
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError:
        raise ConfigError(
            str(config_path), CERTIFICATE_KEY, f"{path} is not a PEM X.509 certificate"
        ) from None


def _private_key(path: Path, config_path: Path) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except (OSError, ValueError) as error:
        raise ConfigError(
            str(config_path),
            PRIVATE_KEY_KEY,
            f"cannot read the private key {path}: {_cause(error)}",
        ) from None
    if mode & GROUP_OTHER_BITS:
        raise ConfigError(
            str(config_path),
            PRIVATE_KEY_KEY,
            f"{path} is mode {mode:04o}: others than its owner can use this terminal's key; "
            f"chmod {PRIVATE_KEY_MODE:04o} {path} "
            "(owned by the delivery daemon's user, posd-sync)",
        )
    data = _read(path, config_path, PRIVATE_KEY_KEY, "private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:  # encrypted: the signing helper cannot use it either
        raise ConfigError(
            str(config_path),
            PRIVATE_KEY_KEY,
            f"{path} is encrypted: the signing helper and posd need the key unencrypted "
            "(kept private by its file mode)",
        ) from None
    except ValueError:  # never the parser's words: they could quote the file
        raise ConfigError(
            str(config_path),
            PRIVATE_KEY_KEY,
            f"{path} is not a PEM private key (PKCS#8 or traditional EC/RSA, unencrypted)",
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ConfigError(
            str(config_path), PRIVATE_KEY_KEY, f"{path}: only EC and RSA keys can sign"
        )
    return key


def load_signer(
    settings: IdentitySettings, config_path: Path, store_id: str, terminal_id: str
) -> Signer:
    """The signer `[identity]` names, checked against the lane (`ConfigError` naming the key,
    the file and what is wrong)."""
    assert settings.certificate_file is not None
    assert settings.private_key_file is not None
    certificate = _certificate(settings.certificate_file, config_path)
    key = _private_key(settings.private_key_file, config_path)
    try:
        signer = Signer(certificate, key)
    except SigningKeyError:
        raise ConfigError(
            str(config_path),
            PRIVATE_KEY_KEY,
            f"{settings.private_key_file} is not the key of the certificate "
            f"{settings.certificate_file}: install the pair the chain's CA issued together",
        ) from None
    _check_lane(settings, config_path, signer.certificate, store_id, terminal_id)
    return signer


def _check_lane(
    settings: IdentitySettings,
    config_path: Path,
    certificate: x509.Certificate,
    store_id: str,
    terminal_id: str,
) -> None:
    named_store, named_terminal = certificate_identity(certificate)
    if (named_store, named_terminal) != (store_id, terminal_id):
        raise ConfigError(
            str(config_path),
            CERTIFICATE_KEY,
            f"{settings.certificate_file} names store {named_store or '(no OU)'}, terminal "
            f"{named_terminal or '(no CN)'}, but this config is store {store_id}, terminal "
            f"{terminal_id}: install this lane's certificate (subject CN={terminal_id}, "
            f"OU={store_id}), or fix [terminal]",
        )


def check_identity(
    settings: IdentitySettings,
    config_path: Path,
    store_id: str,
    terminal_id: str,
    *,
    signs: bool = True,
) -> None:
    """What `posd.config` checks at load: the files, if configured, sign for this lane. A
    process that never signs (`signs=False`: the capture daemon) checks the certificate alone:
    the key is the delivery daemon's user's, private to it (systemd/, docs/operations.md)."""
    if not settings.configured:
        return
    if signs:
        load_signer(settings, config_path, store_id, terminal_id)
        return
    assert settings.certificate_file is not None
    certificate = _certificate(settings.certificate_file, config_path)
    _check_lane(settings, config_path, certificate, store_id, terminal_id)


def lane_signer(
    identity: IdentitySettings, config_path: Path, store_id: str, terminal_id: str
) -> Signer | None:
    """The lane's signer (`None` without `[identity]`, development only)."""
    if not identity.configured:
        return None
    signer = load_signer(identity, config_path, store_id, terminal_id)
    left = days_left(signer.certificate)
    if left < RENEW_WARN_DAYS:  # signed anyway: the cloud judges validity when it checks
        log.warning(
            "identity.certificate_expiring" if left > 0 else "identity.certificate_expired",
            certificate_file=str(identity.certificate_file),
            days_left=int(left),
        )
    return signer


def days_left(certificate: x509.Certificate, now: datetime | None = None) -> float:
    """Days until the certificate expires (negative once it has)."""
    remaining = certificate.not_valid_after_utc - (now or datetime.now(UTC))
    return remaining.total_seconds() / SECONDS_PER_DAY
