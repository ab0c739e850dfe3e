"""A secure reader's P2PE block, opened only inside AWS Payment Cryptography.

A record journaled in P2PE mode carries in its sealed secret `{"p2pe": ...}` (`wire.p2pe`):
the tracks as the reader's head encrypted them under DUKPT. The Lambda never holds the DUKPT
key, and by default never the clear tracks either: each track goes to the service's
`ReEncryptData`, from the BDK the block names (`key_ref`: its alias or ARN; the KSN, TDES_2KEY
or AES_128 derivation, the REQUEST data key a reader encrypts with, CBC) to the processor's
working key (`P2PE_OUTGOING_KEY`; Symmetric CBC, a fresh IV per track). The payment is filed
with the re-encrypted tracks, that key's ARN and check value, and the masked PAN of the
record's clear metadata: what a processor needs, and nothing that is card data in clear.

`DecryptData` (`P2PE_DECRYPT=1`) is for a chain whose processor takes no encrypted tracks.
It is logged at start and per record; the clear track stays in memory, only its masked PAN
is filed (as for a record journaled with a clear PAN), and never a log line or an error text
quotes it.

The service's refusals are the record's trouble, not a moment's: AccessDenied,
ResourceNotFound and ValidationException are `P2peRefused` (the consumer holds the record and
raises `p2pe_refused`), so is a block that is not a valid `posd.p2pe/1` object. Throttling, an
internal error or an unreachable endpoint are `P2peUnavailable`: the message fails and SQS
delivers it again.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from botocore.exceptions import BotoCoreError, ClientError

from cloud.errors import ConsumerConfigError, ConsumerError
from wire.errors import MalformedMessage
from wire.masking import PAN_MAX_DIGITS, PAN_MIN_DIGITS, luhn_valid, mask_pan
from wire.p2pe import P2PE_FIELD, DukptScheme, EncryptedTrack, P2peBlock

SERVICE_NAME = "payment-cryptography-data"
OUTGOING_KEY_ENV = "P2PE_OUTGOING_KEY"
OUTGOING_ALGORITHM_ENV = "P2PE_OUTGOING_KEY_ALGORITHM"
DECRYPT_ENV = "P2PE_DECRYPT"
ENABLED, DISABLED = "1", "0"
CBC = "CBC"
# The service's names for the reader's DUKPT, and the data key a reader encrypts its tracks
# with (the request direction's: TDES's data variant, AES's "encrypt" usage 0x3000).
DERIVATION_TYPE = {DukptScheme.TDES_2KEY: "TDES_2KEY", DukptScheme.AES_128: "AES_128"}
READER_KEY_VARIANT = "REQUEST"
# The processor key's algorithm sets the IV's size (one block).
IV_BYTES = {
    "TDES_2KEY": 8,
    "TDES_3KEY": 8,
    "AES_128": 16,
    "AES_192": 16,
    "AES_256": 16,
}
DEFAULT_OUTGOING_ALGORITHM = "TDES_2KEY"
# Answers that asking again will not change: the record is held, and alarmed.
REFUSALS = frozenset({"AccessDeniedException", "ResourceNotFoundException", "ValidationException"})
MALFORMED_BLOCK = "malformed_block"
NOT_CONFIGURED = "not_configured"
PAN_MISMATCH = "pan_mismatch"
NO_PAN = "no_pan"
KSN_REUSED = "ksn_reused"
TRACK_START_SENTINELS = "%;"
TRACK1_FORMAT_CODE = "B"
PAN_ENDS = "^=D"  # track 1's and track 2's field separators, and EMV track 2's

log = structlog.get_logger("cloud.p2pe")


class P2peRefused(ConsumerError):
    """The block cannot be opened, and will not be on a retry: `reason` says why (the
    service's error code, `malformed_block`, `not_configured`, `pan_mismatch`, `no_pan`)."""

    code = "p2pe_refused"

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


class KsnReused(P2peRefused):
    """The block's KSN was used by another event first (`cloud.ksns`): a replayed swipe.

    A KSN is no secret (it names the reader's transaction, not its key): the alarm quotes it,
    with the masked PAN the record shows and never the ciphertext."""

    code = "p2pe_ksn_reused"

    def __init__(self, block: P2peBlock, first_event_id: str, masked_pan: str | None) -> None:
        self.key_ref = block.key_ref
        self.ksn = block.ksn.hex().upper()
        self.first_event_id = first_event_id
        self.masked_pan = masked_pan
        super().__init__(
            KSN_REUSED, f"KSN {self.ksn} of key {self.key_ref} was used by event {first_event_id}"
        )


class P2peUnavailable(ConsumerError):
    """The service throttled, failed or could not be reached: worth the queue's retry."""

    code = "p2pe_unavailable"


@dataclass(frozen=True)
class P2peSettings:
    outgoing_key: str = ""  # the processor's working key (ARN or alias)
    outgoing_algorithm: str = DEFAULT_OUTGOING_ALGORITHM
    decrypt: bool = False  # DecryptData instead of ReEncryptData

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> P2peSettings:
        decrypt = env.get(DECRYPT_ENV, DISABLED) or DISABLED
        if decrypt not in (ENABLED, DISABLED):
            raise ConsumerConfigError(f"{DECRYPT_ENV} must be {ENABLED} or {DISABLED}")
        algorithm = env.get(OUTGOING_ALGORITHM_ENV) or DEFAULT_OUTGOING_ALGORITHM
        if algorithm not in IV_BYTES:
            raise ConsumerConfigError(
                f"{OUTGOING_ALGORITHM_ENV} must be one of {', '.join(IV_BYTES)}"
            )
        return cls(env.get(OUTGOING_KEY_ENV, ""), algorithm, decrypt == ENABLED)


def block_of(secret: Mapping[str, Any]) -> P2peBlock | None:
    """The P2PE block of a record's opened secret; None when it has none (a clear read)."""
    if P2PE_FIELD not in secret:
        return None
    try:
        return P2peBlock.from_json(secret[P2PE_FIELD])
    except MalformedMessage as error:
        raise P2peRefused(MALFORMED_BLOCK, str(error)) from error


class PaymentCryptography:
    """The payment's P2PE fields, from AWS Payment Cryptography (a boto3
    `payment-cryptography-data` client)."""

    def __init__(
        self,
        client: Any,
        settings: P2peSettings,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self._client = client
        self._settings = settings
        self._random_bytes = random_bytes
        if settings.decrypt:
            log.warning("cloud.p2pe_decrypt_enabled", operation="DecryptData")

    def payment_fields(
        self, block: P2peBlock, meta: Mapping[str, Any], event_id: str
    ) -> dict[str, Any]:
        """What the payment keeps: `masked_pan` and, re-encrypting, `p2pe` (the processor
        key's ARN and check value, each track's ciphertext, IV and clear length)."""
        if self._settings.decrypt:
            return {"masked_pan": self._decrypted_pan(block, meta, event_id)}
        if not self._settings.outgoing_key:
            raise P2peRefused(NOT_CONFIGURED, f"{OUTGOING_KEY_ENV} names no processor key")
        fields: dict[str, Any] = {"p2pe": self._re_encrypted(block)}
        masked = shown_pan(meta)
        if masked is not None:
            fields["masked_pan"] = masked
        return fields

    def _re_encrypted(self, block: P2peBlock) -> dict[str, Any]:
        tracks, key_arn, check_value = [], "", ""
        for track in block.tracks:
            iv = self._random_bytes(IV_BYTES[self._settings.outgoing_algorithm]).hex().upper()
            reply = self._call(
                "re_encrypt_data",
                block,
                IncomingKeyIdentifier=block.key_ref,
                OutgoingKeyIdentifier=self._settings.outgoing_key,
                CipherText=track.ciphertext.hex().upper(),
                IncomingEncryptionAttributes=_dukpt_attributes(block),
                OutgoingEncryptionAttributes={
                    "Symmetric": {"Mode": CBC, "InitializationVector": iv}
                },
            )
            key_arn, check_value = str(reply["KeyArn"]), str(reply["KeyCheckValue"])
            tracks.append(
                {
                    "track": track.track,
                    "ciphertext": str(reply["CipherText"]),
                    "iv": iv,
                    "length": track.length,
                }
            )
        return {
            "key_arn": key_arn,
            "key_check_value": check_value,
            "mode": CBC,
            "tracks": tracks,
            "device_serial": block.device_serial,
        }

    def _decrypted_pan(self, block: P2peBlock, meta: Mapping[str, Any], event_id: str) -> str:
        """The masked PAN of the first track that carries one (decrypted in memory only)."""
        log.warning(
            "cloud.p2pe_decrypting", event_id=event_id, key_ref=block.key_ref, ksn=block.ksn.hex()
        )
        for track in block.tracks:
            masked = self._masked_pan_of(block, track)
            if masked is None:
                continue
            shown = shown_pan(meta)
            if shown is not None and shown != masked:
                raise P2peRefused(
                    PAN_MISMATCH, "the decrypted card number is not the one the record shows"
                )
            return masked
        raise P2peRefused(NO_PAN, "no decrypted track carries a card number")

    def _masked_pan_of(self, block: P2peBlock, track: EncryptedTrack) -> str | None:
        reply = self._call(
            "decrypt_data",
            block,
            KeyIdentifier=block.key_ref,
            CipherText=track.ciphertext.hex().upper(),
            DecryptionAttributes=_dukpt_attributes(block),
        )
        clear = bytes.fromhex(str(reply["PlainText"]))[: track.length]
        return masked_pan_of_track(clear)

    def _call(self, operation: str, block: P2peBlock, **request: Any) -> dict[str, Any]:
        try:
            return dict(getattr(self._client, operation)(**request))
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", "ClientError"))
            message = str(error.response.get("Error", {}).get("Message", ""))
            text = f"{operation} with key {block.key_ref}: {code}: {message}".strip()
            if code in REFUSALS:
                raise P2peRefused(code, text) from error
            raise P2peUnavailable(text) from error
        except BotoCoreError as error:
            raise P2peUnavailable(f"{operation}: {type(error).__name__}") from error


def shown_pan(meta: Mapping[str, Any]) -> str | None:
    """The masked PAN a record's clear metadata shows, masked again (never more than the
    reader showed); None if it shows none."""
    masked = meta.get("masked_pan")
    return mask_pan(masked) if isinstance(masked, str) and masked else None


def _dukpt_attributes(block: P2peBlock) -> dict[str, Any]:
    return {
        "Dukpt": {
            "KeySerialNumber": block.ksn.hex().upper(),
            "DukptKeyDerivationType": DERIVATION_TYPE[block.scheme],
            "DukptKeyVariant": READER_KEY_VARIANT,
            "Mode": CBC,
        }
    }


def masked_pan_of_track(clear: bytes) -> str | None:
    """The masked PAN of a clear track 1 or 2 (sentinels optional); None if it has none.

    Only the mask leaves this function."""
    text = clear.decode("ascii", errors="replace").lstrip(TRACK_START_SENTINELS)
    if text.startswith(TRACK1_FORMAT_CODE):
        text = text[len(TRACK1_FORMAT_CODE) :]
    end = min((text.find(char) for char in PAN_ENDS if char in text), default=-1)
    digits = text[:end] if end >= 0 else ""
    if not PAN_MIN_DIGITS <= len(digits) <= PAN_MAX_DIGITS or not luhn_valid(digits):
        return None
    return mask_pan(digits)
