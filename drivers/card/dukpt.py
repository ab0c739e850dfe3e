"""DUKPT: the per-transaction keys a secure reader encrypts with (ANSI X9.24-1 TDES, X9.24-3 AES).

The terminal never decrypts: this module is the simulated secure reader's encryptor, and the
local stand-in for AWS Payment Cryptography decrypts with it. No maintained Python DUKPT
package is on the package index this project installs from, so it is a small module on
`cryptography`, tested on the standards' published vectors (tests/drivers/card/test_dukpt.py).

TDES (X9.24-1:2009): the IPEK from the BDK and the KSN with its 21 counter bits cleared; the
transaction key by one non-reversible key generation per one-bit of the counter, high bit
first (Annex A). The data key is the *data variant* of the transaction key (request:
XOR `0000000000FF0000 0000000000FF0000`; response: `000000FF00000000 000000FF00000000`),
then each half TDES-encrypted under the whole variant (the "one-way" step of A.4.1 that the
standard's data test vectors include). ID TECH's secure readers document exactly this Data
Key for their encrypted tracks (SecureMag / SecureHead user manuals, "Track encrypted data").
MagTek's MagneSafe V5 manual instead encrypts tracks under the *PIN* variant (XOR
`00000000000000FF 00000000000000FF`, no one-way step) unless set to "Data Variant/
Bidirectional"; `secure_formats` refuses a reader that says it uses the PIN variant.

AES (X9.24-3:2017): the initial key, then one derivation per one-bit of the 32-bit counter,
then the working key with its key-usage code: data encryption, encrypt (`REQUEST`, 0x3000,
what a reader encrypts tracks with), decrypt (`RESPONSE`, 0x3001) or both ways
(`BIDIRECTIONAL`, 0x3002), always an AES-128 working key (the scheme's); the BDK may be
AES-128, -192 or -256 (the derivation keys are then of that size).

Both: CBC, zero IV, plaintext right-padded with zeros to whole blocks (the clear length
travels beside the ciphertext, as secure readers send it).
"""

from __future__ import annotations

from enum import StrEnum
from math import comb

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from drivers.errors import DriverError
from wire.p2pe import DukptScheme

# The standards' published test BDKs (X9.24-1:2009 A.4, X9.24-3:2017 B.1): simulators and
# tests only; a real reader's BDK lives in an HSM and never in this process.
TDES_TEST_BDK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
AES_TEST_BDK = bytes.fromhex("FEDCBA9876543210F1F1F1F1F1F1F1F1")

TDES_BDK_BYTES = 16  # double-length (2-key) TDES: the only BDK the TDES scheme takes
AES_BDK_BYTES = (16, 24, 32)
COUNTER_BITS = {DukptScheme.TDES_2KEY: 21, DukptScheme.AES_128: 32}
# A reader skips counters with more one-bits than this (each one-bit is a key derivation).
MAX_ONE_BITS = {DukptScheme.TDES_2KEY: 10, DukptScheme.AES_128: 16}

_DES_BLOCK = 8
_IPEK_RIGHT_MASK = bytes.fromhex("C0C0C0C000000000C0C0C0C000000000")
_KEY_REGISTER_MASK = bytes.fromhex("C0C0C0C000000000C0C0C0C000000000")

# AES derivation data (X9.24-3:2017 6.3.3): version, block counter, usage, algorithm, bits.
_AES_DERIVATION_VERSION = 0x01
_AES_USAGE_INITIAL_KEY = 0x8001
_AES_USAGE_KEY_DERIVATION = 0x8000
_AES_ALGORITHM = {16: (0x0002, 128), 24: (0x0003, 192), 32: (0x0004, 256)}
_AES_WORKING_KEY_BYTES = 16  # DukptScheme.AES_128
_AES_INITIAL_KEY_ID_BYTES = 8


class DukptError(DriverError, ValueError):
    """A key, KSN or ciphertext DUKPT cannot use (wrong length, counter exhausted...).

    Its messages name lengths and counters, never a key or data byte."""

    code = "dukpt_invalid"


class KeyVariant(StrEnum):
    """Which data key of a transaction (the names AWS Payment Cryptography uses).

    A reader encrypts its tracks with the REQUEST key; TDES has no both-ways data variant."""

    REQUEST = "REQUEST"
    RESPONSE = "RESPONSE"
    BIDIRECTIONAL = "BIDIRECTIONAL"


_TDES_DATA_VARIANTS = {
    KeyVariant.REQUEST: bytes.fromhex("0000000000FF00000000000000FF0000"),
    KeyVariant.RESPONSE: bytes.fromhex("000000FF00000000000000FF00000000"),
}
_AES_DATA_USAGES = {
    KeyVariant.REQUEST: 0x3000,
    KeyVariant.RESPONSE: 0x3001,
    KeyVariant.BIDIRECTIONAL: 0x3002,
}


# -- the public operations -----------------------------------------------------------------


def initial_key(bdk: bytes, ksn: bytes, scheme: DukptScheme) -> bytes:
    """The IPEK (TDES) / initial key (AES) the reader is injected with for this KSN's device."""
    _check(bdk, ksn, scheme)
    if scheme is DukptScheme.TDES_2KEY:
        return _tdes_ipek(bdk, ksn)
    return _aes_initial_key(bdk, ksn)


def transaction_key(bdk: bytes, ksn: bytes, scheme: DukptScheme) -> bytes:
    """The key of the transaction `ksn` names, before any variant or usage (TDES: the
    "current key"; AES: the intermediate derivation key): what the standards' vectors list."""
    _check_usable(bdk, ksn, scheme)
    if scheme is DukptScheme.TDES_2KEY:
        return _tdes_transaction_key(_tdes_ipek(bdk, ksn), ksn)
    return _aes_transaction_key(_aes_initial_key(bdk, ksn), ksn)


def data_key(
    bdk: bytes, ksn: bytes, scheme: DukptScheme, variant: KeyVariant = KeyVariant.REQUEST
) -> bytes:
    """The data-encryption key of the transaction `ksn` names (TDES: the data variant of the
    transaction key encrypted with itself; AES: the derived data-encryption working key).
    REQUEST by default: the key a reader encrypts its tracks with."""
    key = transaction_key(bdk, ksn, scheme)
    if scheme is DukptScheme.TDES_2KEY:
        if variant not in _TDES_DATA_VARIANTS:
            raise DukptError(f"TDES DUKPT has no {variant.value} data variant")
        intermediate = _xor(key, _TDES_DATA_VARIANTS[variant])
        return _tdes_ecb(intermediate, intermediate[:_DES_BLOCK]) + _tdes_ecb(
            intermediate, intermediate[_DES_BLOCK:]
        )
    usage = _AES_DATA_USAGES[variant]
    return _aes_derive(key, _aes_working_data(usage, _AES_WORKING_KEY_BYTES, ksn), 16)


def encrypt(
    bdk: bytes,
    ksn: bytes,
    scheme: DukptScheme,
    plaintext: bytes,
    variant: KeyVariant = KeyVariant.REQUEST,
) -> bytes:
    """CBC with a zero IV under `data_key`, plaintext zero-padded to whole blocks (what
    secure readers do: the clear length travels beside the ciphertext)."""
    key = data_key(bdk, ksn, scheme, variant)
    padded = plaintext + bytes(-len(plaintext) % scheme.block_bytes)
    encryptor = Cipher(_block_cipher(key, scheme), modes.CBC(bytes(scheme.block_bytes))).encryptor()
    return encryptor.update(padded) + encryptor.finalize()


def decrypt(
    bdk: bytes,
    ksn: bytes,
    scheme: DukptScheme,
    ciphertext: bytes,
    variant: KeyVariant = KeyVariant.REQUEST,
) -> bytes:
    """The inverse of `encrypt` (padding kept: the caller cuts at the clear length)."""
    if len(ciphertext) % scheme.block_bytes:
        raise DukptError(f"ciphertext must be whole {scheme.block_bytes}-byte blocks")
    key = data_key(bdk, ksn, scheme, variant)
    decryptor = Cipher(_block_cipher(key, scheme), modes.CBC(bytes(scheme.block_bytes))).decryptor()
    return decryptor.update(ciphertext) + decryptor.finalize()


def counter(ksn: bytes, scheme: DukptScheme) -> int:
    """The transaction counter a KSN carries (21 bits TDES, 32 bits AES)."""
    _check_ksn(ksn, scheme)
    return int.from_bytes(ksn, "big") & _counter_mask(scheme)


def key_id(ksn: bytes, scheme: DukptScheme) -> bytes:
    """The KSN without its counter: which injected key (BDK id and device) it belongs to."""
    _check_ksn(ksn, scheme)
    return (int.from_bytes(ksn, "big") & ~_counter_mask(scheme)).to_bytes(scheme.ksn_bytes, "big")


def max_one_bits(scheme: DukptScheme) -> int:
    return MAX_ONE_BITS[scheme]


def usable_counters(scheme: DukptScheme) -> int:
    """How many transactions one injected key serves: the counters 1 .. 2^bits - 1 with at
    most `max_one_bits` one-bits (TDES 1,048,575; AES 2,448,023,842)."""
    bits = COUNTER_BITS[scheme]
    return sum(comb(bits, ones) for ones in range(1, MAX_ONE_BITS[scheme] + 1))


def counter_exhaustion(ksn: bytes, scheme: DukptScheme) -> float:
    """The fraction of the device's usable transaction counters used so far (0.0-1.0): a
    reader near 1.0 must be re-injected before it stops encrypting.

    A reader uses its usable counters in increasing order, so the count spent is the number
    of usable counters up to and including this KSN's (0 for the initial KSN)."""
    return _usable_up_to(counter(ksn, scheme), scheme) / usable_counters(scheme)


def next_ksn(ksn: bytes, scheme: DukptScheme) -> bytes:
    """The KSN of the reader's next transaction: the counter plus one, then, while it has
    too many one-bits, plus its lowest one-bit (X9.24-1 A.2, X9.24-3 the same rule).
    `DukptError` when the counter is exhausted: the reader must be re-injected."""
    value = counter(ksn, scheme) + 1
    while bin(value).count("1") > MAX_ONE_BITS[scheme]:
        value += value & -value
    if value > _counter_mask(scheme):
        raise DukptError(f"DUKPT counter exhausted ({usable_counters(scheme)} used)")
    base = int.from_bytes(ksn, "big") & ~_counter_mask(scheme)
    return (base | value).to_bytes(scheme.ksn_bytes, "big")


# -- TDES (X9.24-1:2009 Annex A) -----------------------------------------------------------


def _tdes_ipek(bdk: bytes, ksn: bytes) -> bytes:
    """A.6: the KSN's leftmost 8 bytes, counter cleared, encrypted under the BDK and under
    the BDK XOR C0C0C0C0 00000000 C0C0C0C0 00000000."""
    base = (int.from_bytes(ksn, "big") & ~_counter_mask(DukptScheme.TDES_2KEY)).to_bytes(
        len(ksn), "big"
    )[:_DES_BLOCK]
    return _tdes_ecb(bdk, base) + _tdes_ecb(_xor(bdk, _IPEK_RIGHT_MASK), base)


def _tdes_transaction_key(ipek: bytes, ksn: bytes) -> bytes:
    mask = _counter_mask(DukptScheme.TDES_2KEY)
    tail = int.from_bytes(ksn[-_DES_BLOCK:], "big")
    register = tail & ~mask
    key = ipek
    for bit in _one_bits_high_first(tail & mask, COUNTER_BITS[DukptScheme.TDES_2KEY]):
        register |= bit
        key = _tdes_nonreversible(key, register.to_bytes(_DES_BLOCK, "big"))
    return key


def _tdes_nonreversible(key: bytes, register: bytes) -> bytes:
    """A.2 "non-reversible key generation": each half is the register XOR the key's right
    half, DES-encrypted under its left half, XOR the right half; the left half uses the
    key XOR C0C0C0C0 00000000 C0C0C0C0 00000000."""

    def half(k: bytes) -> bytes:
        left, right = k[:_DES_BLOCK], k[_DES_BLOCK:]
        return _xor(_des_ecb(left, _xor(register, right)), right)

    return half(_xor(key, _KEY_REGISTER_MASK)) + half(key)


def _des_ecb(key: bytes, block: bytes) -> bytes:
    # Single DES is TDES with K1 = K2 = K3 (cryptography takes 24-byte keys only, warning-free).
    return _tdes_ecb(key + key, block)


def _tdes_ecb(key: bytes, block: bytes) -> bytes:
    encryptor = Cipher(_tdes(key), modes.ECB()).encryptor()  # noqa: S305 - one block: derivation
    return encryptor.update(block) + encryptor.finalize()


def _tdes(key: bytes) -> TripleDES:
    """A 2-key (16-byte) key as the 24-byte K1 K2 K1 the library takes."""
    return TripleDES(key + key[:_DES_BLOCK])


# -- AES (X9.24-3:2017 6.3) ----------------------------------------------------------------


def _aes_initial_key(bdk: bytes, ksn: bytes) -> bytes:
    algorithm, bits = _AES_ALGORITHM[len(bdk)]
    data = (
        bytes([_AES_DERIVATION_VERSION, 1])
        + _AES_USAGE_INITIAL_KEY.to_bytes(2, "big")
        + algorithm.to_bytes(2, "big")
        + bits.to_bytes(2, "big")
        + ksn[:_AES_INITIAL_KEY_ID_BYTES]
    )
    return _aes_derive(bdk, data, len(bdk))


def _aes_transaction_key(initial: bytes, ksn: bytes) -> bytes:
    value = int.from_bytes(ksn[_AES_INITIAL_KEY_ID_BYTES:], "big")
    working = 0
    key = initial
    for bit in _one_bits_high_first(value, COUNTER_BITS[DukptScheme.AES_128]):
        working |= bit
        data = _aes_working_data(_AES_USAGE_KEY_DERIVATION, len(initial), ksn, working)
        key = _aes_derive(key, data, len(initial))
    return key


def _aes_working_data(usage: int, key_bytes: int, ksn: bytes, value: int | None = None) -> bytes:
    """Derivation data for a derivation or working key: the low half of the initial key ID
    and the counter (the KSN's own unless `value` is given)."""
    algorithm, bits = _AES_ALGORITHM[key_bytes]
    counter_bytes = ksn[_AES_INITIAL_KEY_ID_BYTES:] if value is None else value.to_bytes(4, "big")
    return (
        bytes([_AES_DERIVATION_VERSION, 1])
        + usage.to_bytes(2, "big")
        + algorithm.to_bytes(2, "big")
        + bits.to_bytes(2, "big")
        + ksn[4:_AES_INITIAL_KEY_ID_BYTES]
        + counter_bytes
    )


def _aes_derive(key: bytes, data: bytes, length: int) -> bytes:
    """6.3.2: AES-ECB of the derivation data under `key`, one block per 16 bytes of the
    derived key, byte 1 of the data numbering the blocks from 1."""
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305 - derivation
    blocks = b"".join(
        encryptor.update(data[:1] + bytes([number]) + data[2:])
        for number in range(1, -(-length // 16) + 1)
    )
    return blocks[:length]


# -- shared --------------------------------------------------------------------------------


def _block_cipher(key: bytes, scheme: DukptScheme) -> TripleDES | algorithms.AES:
    return _tdes(key) if scheme is DukptScheme.TDES_2KEY else algorithms.AES(key)


def _one_bits_high_first(value: int, bits: int) -> list[int]:
    return [1 << shift for shift in reversed(range(bits)) if value >> shift & 1]


def _counter_mask(scheme: DukptScheme) -> int:
    return (1 << COUNTER_BITS[scheme]) - 1


def _usable_up_to(value: int, scheme: DukptScheme) -> int:
    """How many counters in 1..value have at most `MAX_ONE_BITS` one-bits (counted bit by
    bit, high first: every time `value` has a one, all numbers with that bit 0 instead and
    any lower bits are below it)."""
    limit = MAX_ONE_BITS[scheme]
    total, ones_above = 0, 0
    for shift in reversed(range(COUNTER_BITS[scheme])):
        if value >> shift & 1:
            total += sum(comb(shift, k) for k in range(max(0, limit - ones_above + 1)))
            ones_above += 1
    if ones_above <= limit:
        total += 1  # value itself
    return total - 1  # not zero


def _check_ksn(ksn: bytes, scheme: DukptScheme) -> None:
    if len(ksn) != scheme.ksn_bytes:
        raise DukptError(
            f"a {scheme.value} KSN is {scheme.ksn_bytes} bytes, this one is {len(ksn)}"
        )


def _check(bdk: bytes, ksn: bytes, scheme: DukptScheme) -> None:
    _check_ksn(ksn, scheme)
    allowed = (TDES_BDK_BYTES,) if scheme is DukptScheme.TDES_2KEY else AES_BDK_BYTES
    if len(bdk) not in allowed:
        sizes = " or ".join(map(str, allowed))
        raise DukptError(f"a {scheme.value} BDK is {sizes} bytes, this one is {len(bdk)}")


def _check_usable(bdk: bytes, ksn: bytes, scheme: DukptScheme) -> None:
    """Keys exist only for the counters a reader uses: not 0 (the initial KSN), not one with
    more than `MAX_ONE_BITS` one-bits."""
    _check(bdk, ksn, scheme)
    value = counter(ksn, scheme)
    if value == 0:
        raise DukptError("KSN counter 0 is the initial KSN: no transaction uses it")
    if bin(value).count("1") > MAX_ONE_BITS[scheme]:
        raise DukptError(
            f"KSN counter has more than {MAX_ONE_BITS[scheme]} one-bits: no reader uses it"
        )


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))
