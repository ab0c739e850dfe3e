"""A local AWS Payment Cryptography data plane (`DecryptData`, `ReEncryptData`) for the demo
and the tests: the only place outside AWS that decrypts a secure reader's DUKPT output.

moto does not emulate the service, so this small threaded HTTP server does, speaking its real
rest-json protocol to the real `boto3.client("payment-cryptography-data", endpoint_url=...)`:
`POST /keys/{KeyIdentifier}/decrypt` and `POST /keys/{IncomingKeyIdentifier}/reencrypt`
(the identifier URL-encoded in the path), JSON bodies, errors as an HTTP status (the model's
`httpStatusCode`, 400 when it has none), an `x-amzn-ErrorType` header and a JSON body with
`__type`. Requests are checked against botocore's model (`demo.localaws.model`: required
members, unknown members, unions, lengths, patterns, enums) and refused with
`ValidationException` and a `fieldList`, as the service does. DUKPT keys are derived with
`drivers.card.dukpt` (the simulated reader encrypts with the same module).

Keys held (`keys`): the X9.24-1 TDES test BDK `0123456789ABCDEFFEDCBA9876543210`
(`TDES_BDK_ALIAS`), the X9.24-3 AES-128 test BDK (`AES_BDK_ALIAS`), and a processor key
(`PROCESSOR_ALIAS`, random, double-length TDES by default) that `ReEncryptData` encrypts to
and `DecryptData` with `Symmetric` attributes decrypts with (how a test plays the processor).
Each has a key ARN; an alias, an alias ARN or the key ARN names it.

Behaviours that are ASSUMPTIONS about the real service (the model does not pin them down):

- Keys: a BDK serves only `Dukpt` attributes and a processor key only `Symmetric` ones; the
  other way round is `ValidationException` (the service checks the key's usage and modes of
  use; its message differs). An unknown key is `ResourceNotFoundException` (HTTP 404) with
  `ResourceId` = the identifier given.
- DUKPT: `DukptKeyDerivationType` must be the BDK's own algorithm (TDES_2KEY or AES_128;
  omitted: the BDK's); the KSN must be that scheme's (20 hex digits TDES, 24 AES).
  `DukptKeyVariant` picks the data key as `drivers.card.dukpt` derives it (REQUEST, what a
  reader encrypts its tracks with; RESPONSE; BIDIRECTIONAL, AES only: TDES has no both-ways
  data variant, so that is `ValidationException`); omitted, REQUEST (the model names no
  default). `Mode` defaults to CBC,
  the IV to zeros (as the model's documentation says).
- Block sizes: ciphertext must be whole blocks of the incoming key's algorithm (8 bytes TDES,
  16 AES: documented for DecryptData); for ReEncryptData the clear data must also be whole
  blocks of the outgoing key's, because no symmetric padding can be asked for (the model's
  `PaddingType` names RSA paddings only) and we assume the service adds none. A TDES
  processor key takes both schemes' data; an AES one only AES DUKPT's, or TDES data of a
  whole number of 16-byte blocks. An IV must be one block of its key's algorithm.
- Modes: ECB and CBC only (the ones DUKPT allows); other symmetric modes, asymmetric and EMV
  attributes, and wrapped keys are refused with `ValidationException` naming the stand-in.
- Output: `KeyArn` is the key that decrypted (DecryptData) or encrypted (ReEncryptData), its
  `KeyCheckValue` the first 3 bytes of the CMAC of a zero block under it (the model says
  "according to the CMAC specification").
- Authentication: a SigV4 `Authorization` header must be present; it is not verified (none:
  `AccessDeniedException`).

Test knobs (what the service may do and we cannot provoke): `fail_next(code, n)` answers the
next n requests with the model's error `code` (ThrottlingException, AccessDeniedException,
InternalServerException...). `stats` counts requests and successes per operation.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from http.server import BaseHTTPRequestHandler
from typing import Any, cast
from urllib.parse import unquote

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import BlockCipherAlgorithm, Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

from demo.localaws.emulator import EMULATOR_CREDENTIALS, EMULATOR_REGION
from demo.localaws.model import service_model, validate
from demo.localaws.serving import (
    LOOPBACK,
    BackgroundServer,
    LoopbackHTTPServer,
    NoDelayQuietMixin,
)
from drivers.card import dukpt
from posd.errors import PosdError
from wire.p2pe import DukptScheme

SERVICE_NAME = "payment-cryptography-data"
ACCOUNT_ID = "123456789012"  # moto's default account, like the other stand-ins
KEY_ID_BYTES = 8  # 16 hex digits: the shortest key id the model's KeyArn pattern allows
DECRYPT_DATA = "DecryptData"
RE_ENCRYPT_DATA = "ReEncryptData"
# The operations' paths (`requestUri`) and the member each path carries.
OPERATION_PATH = re.compile(r"/keys/(?P<key>[^/?]+)/(?P<action>decrypt|reencrypt)")
OPERATION_OF = {"decrypt": DECRYPT_DATA, "reencrypt": RE_ENCRYPT_DATA}
PATH_MEMBER = {DECRYPT_DATA: "KeyIdentifier", RE_ENCRYPT_DATA: "IncomingKeyIdentifier"}
JSON_CONTENT_TYPE = "application/json"
SIGV4_PREFIX = "AWS4-HMAC-SHA256"

TEST_TDES_BDK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")  # ANSI X9.24-1 test BDK
TEST_AES_BDK = bytes.fromhex("FEDCBA9876543210F1F1F1F1F1F1F1F1")  # ANSI X9.24-3 test BDK
TDES_BDK_ALIAS = "alias/posd-test-bdk-tdes"
AES_BDK_ALIAS = "alias/posd-test-bdk-aes"
PROCESSOR_ALIAS = "alias/posd-test-processor"

TDES_2KEY = "TDES_2KEY"
AES_128 = "AES_128"
KEY_BYTES = {TDES_2KEY: 16, AES_128: 16}
BLOCK_BYTES = {TDES_2KEY: 8, AES_128: 16}
SCHEME_OF = {TDES_2KEY: DukptScheme.TDES_2KEY, AES_128: DukptScheme.AES_128}
CBC, ECB = "CBC", "ECB"
KCV_BYTES = 3

VALIDATION = "ValidationException"
ACCESS_DENIED = "AccessDeniedException"
NOT_FOUND = "ResourceNotFoundException"
THROTTLED = "ThrottlingException"
INTERNAL = "InternalServerException"
DEFAULT_ERROR_STATUS = 400  # what an error shape without `httpStatusCode` is sent with


class ServiceError(PosdError):
    """What the stand-in answers instead of a result: `error_code` is the model's error shape,
    `fields` its members (ResourceId, fieldList)."""

    code = "payment_cryptography_error"

    def __init__(self, error_code: str, message: str, **fields: Any) -> None:
        self.error_code = error_code
        self.fields = fields
        super().__init__(message)


class KeyUse(StrEnum):
    BDK = "dukpt-bdk"  # a base derivation key: DUKPT attributes only
    SYMMETRIC = "symmetric"  # a working key: Symmetric attributes only


@dataclass(frozen=True)
class HeldKey:
    arn: str
    alias: str
    algorithm: str  # TDES_2KEY | AES_128
    use: KeyUse
    material: bytes = field(repr=False)

    @property
    def check_value(self) -> str:
        """The first bytes of the CMAC of a zero block under the key (hex, upper case)."""
        mac = CMAC(block_cipher(self.algorithm, self.material))
        mac.update(bytes(BLOCK_BYTES[self.algorithm]))
        return mac.finalize()[:KCV_BYTES].hex().upper()


def block_cipher(algorithm: str, key: bytes) -> BlockCipherAlgorithm:
    """TDES keys go to `cryptography` as three keys (K1 K2 K1): the two-key form is deprecated
    there, and is the same cipher."""
    if algorithm == TDES_2KEY:
        return TripleDES(key + key[:8])
    return algorithms.AES(key)


def crypt(algorithm: str, key: bytes, mode: str, iv: bytes, data: bytes, encrypt: bool) -> bytes:
    # ECB: a mode the service offers (DUKPT of a single block); the stand-in must do it too
    chosen = modes.CBC(iv) if mode == CBC else modes.ECB()  # noqa: S305
    cipher = Cipher(block_cipher(algorithm, key), chosen)
    context = cipher.encryptor() if encrypt else cipher.decryptor()
    return context.update(data) + context.finalize()


@dataclass
class StandInStats:
    requests: Counter[str] = field(default_factory=Counter)  # per operation, refused ones too
    served: Counter[str] = field(default_factory=Counter)  # per operation, answered 200


class PaymentCryptographyEndpoint(BackgroundServer):
    """The server on a free loopback port, in a daemon thread; a context manager.

    `client()` is a boto3 client for it; `add_key` holds another key."""

    def __init__(
        self,
        host: str = LOOPBACK,
        port: int = 0,
        *,
        processor_algorithm: str = TDES_2KEY,
    ) -> None:
        self._model = service_model(SERVICE_NAME)
        self._keys: dict[str, HeldKey] = {}
        self._lock = threading.Lock()
        self._faults: list[Any] = []  # [code, requests left]
        self.stats = StandInStats()
        self.add_key(TDES_BDK_ALIAS, TDES_2KEY, KeyUse.BDK, TEST_TDES_BDK)
        self.add_key(AES_BDK_ALIAS, AES_128, KeyUse.BDK, TEST_AES_BDK)
        processor = secrets.token_bytes(KEY_BYTES[processor_algorithm])
        self.add_key(PROCESSOR_ALIAS, processor_algorithm, KeyUse.SYMMETRIC, processor)
        server = LoopbackHTTPServer((host, port), _make_handler(self))
        self._serve_in_thread(server, "payment-cryptography")

    # --- keys and knobs ---------------------------------------------------------------

    def add_key(self, alias: str, algorithm: str, use: KeyUse, material: bytes) -> HeldKey:
        key_id = secrets.token_hex(KEY_ID_BYTES)
        arn = f"arn:aws:payment-cryptography:{EMULATOR_REGION}:{ACCOUNT_ID}:key/{key_id}"
        held = HeldKey(arn, alias, algorithm, use, material)
        alias_arn = f"arn:aws:payment-cryptography:{EMULATOR_REGION}:{ACCOUNT_ID}:{alias}"
        with self._lock:
            for name in (arn, alias, alias_arn):
                self._keys[name] = held
        return held

    def key(self, identifier: str) -> HeldKey:
        with self._lock:
            held = self._keys.get(identifier)
        if held is None:
            raise ServiceError(NOT_FOUND, f"key {identifier} not found", ResourceId=identifier)
        return held

    def fail_next(self, code: str, requests: int = 1) -> None:
        """Answer the next `requests` requests with the model's error `code`."""
        self._model.shape_for(code)  # a name the model does not have is a test's typo
        with self._lock:
            self._faults = [code, requests]

    def client(self, config: Any = None) -> Any:
        """A boto3 client for this endpoint (the emulator's region and dummy credentials);
        `config` a botocore `Config` (a test turns the client's own validation off)."""
        import boto3

        return cast(Any, boto3).client(
            SERVICE_NAME,
            region_name=EMULATOR_REGION,
            endpoint_url=self.endpoint_url,
            config=config,
            **EMULATOR_CREDENTIALS,
        )

    def status_of(self, code: str) -> int:
        error = self._model.shape_for(code).metadata.get("error", {})
        return int(error.get("httpStatusCode", DEFAULT_ERROR_STATUS))

    # --- the operations ---------------------------------------------------------------

    def handle(self, operation: str, request: Any) -> dict[str, Any]:
        """One decoded request (path member included); raises `ServiceError`."""
        with self._lock:
            self.stats.requests[operation] += 1
            if self._faults and self._faults[1] > 0:
                self._faults[1] -= 1
                raise ServiceError(self._faults[0], f"injected {self._faults[0]}")
        problems: list[str] = []
        shape = self._model.operation_model(operation).input_shape
        validate(shape, request, shape.name, problems)
        if problems:
            raise _invalid(problems)
        answer = (
            self._decrypt_data(request)
            if operation == DECRYPT_DATA
            else self._re_encrypt_data(request)
        )
        with self._lock:
            self.stats.served[operation] += 1
        return answer

    def _decrypt_data(self, request: dict[str, Any]) -> dict[str, Any]:
        _refuse_wrapped(request, "WrappedKey")
        held = self.key(request["KeyIdentifier"])
        clear = self._decrypt(held, request["DecryptionAttributes"], request["CipherText"])
        return {"KeyArn": held.arn, "KeyCheckValue": held.check_value, "PlainText": clear.hex()}

    def _re_encrypt_data(self, request: dict[str, Any]) -> dict[str, Any]:
        _refuse_wrapped(request, "IncomingWrappedKey", "OutgoingWrappedKey")
        incoming = self.key(request["IncomingKeyIdentifier"])
        outgoing = self.key(request["OutgoingKeyIdentifier"])
        clear = self._decrypt(
            incoming, request["IncomingEncryptionAttributes"], request["CipherText"]
        )
        attributes = request["OutgoingEncryptionAttributes"]
        if "Symmetric" not in attributes or outgoing.use is not KeyUse.SYMMETRIC:
            raise _invalid(
                [
                    "OutgoingEncryptionAttributes: the stand-in re-encrypts to a "
                    "symmetric working key (Symmetric attributes) only"
                ]
            )
        mode, iv = _mode_and_iv(attributes["Symmetric"], outgoing.algorithm, "Outgoing")
        _whole_blocks(clear, outgoing.algorithm, "the clear data (outgoing key)")
        out = crypt(outgoing.algorithm, outgoing.material, mode, iv, clear, encrypt=True)
        return {
            "KeyArn": outgoing.arn,
            "KeyCheckValue": outgoing.check_value,
            "CipherText": out.hex(),
        }

    def _decrypt(self, held: HeldKey, attributes: dict[str, Any], hex_text: str) -> bytes:
        ciphertext = bytes.fromhex(hex_text)  # the model's pattern holds: whole hex pairs
        _whole_blocks(ciphertext, held.algorithm, "CipherText")
        if "Dukpt" in attributes and held.use is KeyUse.BDK:
            dukpt_attributes = attributes["Dukpt"]
            key = _dukpt_key(held, dukpt_attributes)
            mode, iv = _mode_and_iv(dukpt_attributes, held.algorithm, "Dukpt", default=CBC)
            return crypt(held.algorithm, key, mode, iv, ciphertext, encrypt=False)
        if "Symmetric" in attributes and held.use is KeyUse.SYMMETRIC:
            mode, iv = _mode_and_iv(attributes["Symmetric"], held.algorithm, "Symmetric")
            return crypt(held.algorithm, held.material, mode, iv, ciphertext, encrypt=False)
        raise _invalid(
            [
                f"{'/'.join(attributes)}: not for key {held.alias} ({held.use.value}); the "
                "stand-in supports Dukpt attributes on a BDK and Symmetric ones on a working key"
            ]
        )


def _dukpt_key(held: HeldKey, attributes: dict[str, Any]) -> bytes:
    derivation = attributes.get("DukptKeyDerivationType", held.algorithm)
    if derivation != held.algorithm:
        raise _invalid([f"Dukpt.DukptKeyDerivationType: must be the BDK's {held.algorithm}"])
    variant = dukpt.KeyVariant(attributes.get("DukptKeyVariant", dukpt.KeyVariant.REQUEST))
    scheme = SCHEME_OF[held.algorithm]
    ksn = bytes.fromhex(attributes["KeySerialNumber"])
    if len(ksn) != scheme.ksn_bytes:
        raise _invalid([f"Dukpt.KeySerialNumber: {held.algorithm} takes {scheme.ksn_bytes} bytes"])
    try:
        return dukpt.data_key(held.material, ksn, scheme, variant)
    except dukpt.DukptError as error:
        raise _invalid([f"Dukpt: {error}"]) from error


def _mode_and_iv(
    attributes: dict[str, Any], algorithm: str, where: str, default: str | None = None
) -> tuple[str, bytes]:
    mode = attributes.get("Mode", default)
    if mode not in (CBC, ECB):
        raise _invalid([f"{where}.Mode: the stand-in implements {CBC} and {ECB} only"])
    block = BLOCK_BYTES[algorithm]
    iv = bytes.fromhex(attributes.get("InitializationVector", "00" * block))
    if len(iv) != block:
        raise _invalid([f"{where}.InitializationVector: must be {block} bytes for {algorithm}"])
    return mode, iv


def _whole_blocks(data: bytes, algorithm: str, what: str) -> None:
    block = BLOCK_BYTES[algorithm]
    if len(data) % block:
        raise _invalid([f"{what}: must be whole {block}-byte blocks for {algorithm}"])


def _refuse_wrapped(request: dict[str, Any], *members: str) -> None:
    for member in members:
        if member in request:
            raise _invalid([f"{member}: the stand-in holds its keys; it takes no wrapped key"])


def _invalid(problems: list[str]) -> ServiceError:
    """`ValidationException` with the service's `fieldList` (path, message per problem)."""
    fields = []
    for problem in problems:
        path, _, message = problem.partition(": ")
        fields.append({"path": path, "message": message})
    return ServiceError(VALIDATION, "; ".join(problems[:10]), fieldList=fields)


# --- HTTP --------------------------------------------------------------------------------


def error_body(error: ServiceError) -> bytes:
    """The rest-json error: `__type` names the shape; `message`/`Message` as the shape spells
    it (botocore reads either), plus the shape's own members."""
    text_member = "message" if error.error_code == VALIDATION else "Message"
    body = {"__type": error.error_code, text_member: str(error), **error.fields}
    return json.dumps(body).encode()


def _make_handler(endpoint: PaymentCryptographyEndpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(NoDelayQuietMixin, BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _reply(self, status: int, body: bytes, error_code: str | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", JSON_CONTENT_TYPE)
            self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
            if error_code is not None:
                self.send_header("x-amzn-ErrorType", error_code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body)
                self.wfile.flush()

        def _fail(self, error: ServiceError) -> None:
            status = endpoint.status_of(error.error_code)
            self._reply(status, error_body(error), error.error_code)

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            match = OPERATION_PATH.fullmatch(self.path)
            if match is None:
                self._fail(ServiceError(VALIDATION, f"no operation at {self.path}"))
                return
            if not self.headers.get("Authorization", "").startswith(SIGV4_PREFIX):
                self._fail(ServiceError(ACCESS_DENIED, "the request is not signed"))
                return
            operation = OPERATION_OF[match["action"]]
            try:
                request = json.loads(raw or b"{}")
                if not isinstance(request, dict):
                    raise ValueError("not a JSON object")
            except ValueError:
                self._fail(ServiceError(VALIDATION, "the body is not a JSON object"))
                return
            request[PATH_MEMBER[operation]] = unquote(match["key"])
            try:
                answer = endpoint.handle(operation, request)
            except ServiceError as error:
                self._fail(error)
                return
            self._reply(200, json.dumps(answer).encode())

    return Handler
