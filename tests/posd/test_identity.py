"""`[identity]`: the lane's Roles Anywhere certificate and key, checked when the config loads.

Production refuses to start without them; a certificate of another lane, a key of another
certificate, an unreadable or shared key file are refused with the file and the cause (never
the key's bytes); development may go without (unsigned side events)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from structlog.testing import capture_logs

from demo.pki import LocalCa
from posd.assembly import signer_for
from posd.config import load_config
from posd.errors import ConfigError
from tests.terminal_identity import lane_credentials

STORE_ID = "store-0042"
TERMINAL_ID = "lane-07"
BASE = (
    f'[terminal]\nstore_id = "{STORE_ID}"\nterminal_id = "{TERMINAL_ID}"\n'
    '[keys]\nkms_key_id = "alias/k"\n[payments]\ncurrencies = ["EUR"]\n'
)
DEVELOPMENT = BASE.replace("[keys]", 'mode = "development"\n[keys]')
IDENTITY = '[identity]\ncertificate_file = "{cert}"\nprivate_key_file = "{key}"\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "posd.toml"
    path.write_text(text)
    return path


def refused(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value


def with_identity(tmp_path: Path, cert: str = "terminal.pem", key: str = "terminal.key") -> Path:
    return write(tmp_path, BASE + IDENTITY.format(cert=cert, key=key))


def test_production_without_identity_is_refused_naming_the_keys(tmp_path: Path) -> None:
    error = refused(write(tmp_path, BASE))
    assert error.key == "identity.certificate_file"
    assert "required in production" in str(error)
    assert "[identity]" in str(error) and "private_key_file" in str(error)


def test_development_without_identity_loads_unsigned(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, DEVELOPMENT))
    assert not config.identity.configured
    assert signer_for(config) is None


def test_the_lane_certificate_loads_with_paths_relative_to_the_config(tmp_path: Path) -> None:
    lane_credentials(tmp_path / "pki", STORE_ID, TERMINAL_ID)
    config = load_config(with_identity(tmp_path, "pki/terminal.pem", "pki/terminal.key"))
    assert config.identity.certificate_file == tmp_path / "pki" / "terminal.pem"
    assert config.identity.private_key_file == tmp_path / "pki" / "terminal.key"
    signer = signer_for(config)
    assert signer is not None and signer.identity() == (STORE_ID, TERMINAL_ID)


@pytest.mark.parametrize(
    ("store_id", "terminal_id"),
    [(STORE_ID, "lane-08"), ("store-0043", TERMINAL_ID)],
)
def test_a_certificate_of_another_lane_is_refused_naming_both(
    tmp_path: Path, store_id: str, terminal_id: str
) -> None:
    lane_credentials(tmp_path, store_id, terminal_id)
    error = refused(with_identity(tmp_path))
    assert error.key == "identity.certificate_file"
    message = str(error)
    assert f"store {store_id}, terminal {terminal_id}" in message  # what the file names
    assert f"store {STORE_ID}, terminal {TERMINAL_ID}" in message  # what this config is
    assert str(tmp_path / "terminal.pem") in message


def test_the_key_of_another_certificate_is_refused(tmp_path: Path) -> None:
    lane_credentials(tmp_path, STORE_ID, TERMINAL_ID)
    other = LocalCa().issue(STORE_ID, TERMINAL_ID).write(tmp_path / "other")
    error = refused(with_identity(tmp_path, key="other/terminal.key"))
    assert error.key == "identity.private_key_file"
    assert "not the key of the certificate" in str(error)
    assert other.private_key_file is not None
    assert other.private_key_file.read_text().splitlines()[1] not in str(error)


@pytest.mark.parametrize("missing", ["terminal.pem", "terminal.key"])
def test_a_missing_file_is_refused_with_its_path_and_cause(tmp_path: Path, missing: str) -> None:
    lane_credentials(tmp_path, STORE_ID, TERMINAL_ID)
    (tmp_path / missing).unlink()
    error = refused(with_identity(tmp_path))
    assert str(tmp_path / missing) in str(error)
    assert "No such file" in str(error)


def test_a_key_others_can_read_is_refused_with_the_chmod_that_fixes_it(tmp_path: Path) -> None:
    written = lane_credentials(tmp_path, STORE_ID, TERMINAL_ID)
    assert written.private_key_file is not None
    written.private_key_file.chmod(0o644)
    error = refused(with_identity(tmp_path))
    assert error.key == "identity.private_key_file"
    assert "0644" in str(error) and f"chmod 0600 {written.private_key_file}" in str(error)
    written.private_key_file.chmod(0o600)  # the fix the message names
    assert load_config(with_identity(tmp_path)).identity.configured


def test_an_unparseable_key_is_refused_without_quoting_it(tmp_path: Path) -> None:
    written = lane_credentials(tmp_path, STORE_ID, TERMINAL_ID)
    assert written.private_key_file is not None
    secret = "c2VjcmV0LWtleS1tYXRlcmlhbC1uZXZlci1wcmludGVk"
    written.private_key_file.write_text(
        f"-----BEGIN PRIVATE KEY-----\n{secret}\n-----END PRIVATE KEY-----\n"
    )
    error = refused(with_identity(tmp_path))
    assert "not a PEM private key" in str(error)
    assert secret not in str(error)


def test_an_encrypted_key_is_refused_saying_so(tmp_path: Path) -> None:
    written = lane_credentials(tmp_path, STORE_ID, TERMINAL_ID)
    assert written.private_key_file is not None
    encrypted = written.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    )
    written.private_key_file.write_bytes(encrypted)
    assert "is encrypted" in str(refused(with_identity(tmp_path)))


def test_a_certificate_file_that_is_not_one_is_refused(tmp_path: Path) -> None:
    lane_credentials(tmp_path, STORE_ID, TERMINAL_ID)
    (tmp_path / "terminal.pem").write_text("not a certificate\n")
    error = refused(with_identity(tmp_path))
    assert error.key == "identity.certificate_file"
    assert "not a PEM X.509 certificate" in str(error)


@pytest.mark.parametrize("only", ["certificate_file", "private_key_file"])
def test_one_file_without_the_other_is_refused(tmp_path: Path, only: str) -> None:
    lane_credentials(tmp_path, STORE_ID, TERMINAL_ID)
    line = f'{only} = "terminal.{"pem" if only == "certificate_file" else "key"}"\n'
    error = refused(write(tmp_path, DEVELOPMENT + "[identity]\n" + line))
    other = {"certificate_file", "private_key_file"} - {only}
    assert error.key == f"identity.{other.pop()}"
    assert "required with" in str(error)


def test_an_expired_certificate_still_loads(tmp_path: Path) -> None:
    """Expiry stops the cloud proving the lane's checkpoints, never the lane taking payments:
    `posd doctor` reports it."""
    lane_credentials(
        tmp_path,
        STORE_ID,
        TERMINAL_ID,
        not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=400),
        valid_for=dt.timedelta(days=365),
    )
    assert load_config(with_identity(tmp_path)).identity.configured


def test_a_certificate_about_to_expire_is_logged_when_the_engine_takes_it(
    tmp_path: Path,
) -> None:
    lane_credentials(tmp_path, STORE_ID, TERMINAL_ID, valid_for=dt.timedelta(days=3))
    config = load_config(with_identity(tmp_path))
    with capture_logs() as logs:
        assert signer_for(config) is not None
    [entry] = [e for e in logs if e["event"] == "identity.certificate_expiring"]
    assert entry["log_level"] == "warning" and entry["days_left"] == 2


def test_the_capture_daemon_checks_the_certificate_and_never_reads_the_key(
    tmp_path: Path,
) -> None:
    """`posd run` never signs: the key is the delivery daemon's user's (posd-sync, 0600), which
    capture's user cannot read; here it is gone altogether. The certificate is still judged."""
    written = lane_credentials(tmp_path, STORE_ID, TERMINAL_ID)
    assert written.private_key_file is not None
    written.private_key_file.unlink()
    assert "No such file" in str(refused(with_identity(tmp_path)))  # delivery's check
    assert load_config(with_identity(tmp_path), signs=False).identity.configured
    lane_credentials(tmp_path, STORE_ID, "lane-08")
    with pytest.raises(ConfigError) as caught:
        load_config(with_identity(tmp_path), signs=False)
    assert caught.value.key == "identity.certificate_file"
