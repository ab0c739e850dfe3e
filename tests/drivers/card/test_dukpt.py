"""DUKPT on the standards' published vectors.

TDES: ANSI X9.24-1:2009 Annex A.4 (BDK 0123...3210, IKSN FFFF9876543210E00000): the IPEK, the
transaction keys of the initial sequence (A.4.2) and of the rollover sequence (A.4.3, counters
with up to 10 one-bits), the PIN-variant PIN blocks, and the data-variant CBC ciphertexts of
the ASCII text `4012345678909D987` as the open-source X9.24 implementations carry them.
AES: ANSI X9.24-3:2017 Annex B.1 and its supplement test vectors (BDK FEDC...F1F1, initial
key ID 1234567890123456): the initial key (AES-128 and AES-256 BDK), the intermediate
derivation keys of counters 1-8, 0x1FFFE-0x20001 and the last four counters, and the
data-encryption (request / response) ciphertexts of the same text.
"""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from hypothesis import assume, given
from hypothesis import strategies as st

from drivers.card import dukpt
from drivers.card.dukpt import DukptError, KeyVariant
from drivers.errors import DriverError
from wire.p2pe import DukptScheme

TDES = DukptScheme.TDES_2KEY
AES = DukptScheme.AES_128

TDES_BDK = dukpt.TDES_TEST_BDK
TDES_IKSN = bytes.fromhex("FFFF9876543210E00000")
TDES_IPEK = bytes.fromhex("6AC292FAA1315B4D858AB3A3D7D5933A")

# X9.24-1:2009 A.4.2 (initial sequence) and A.4.3 (rollover): counter -> transaction key.
TDES_TRANSACTION_KEYS = {
    0x000001: "042666B49184CFA368DE9628D0397BC9",
    0x000002: "C46551CEF9FD24B0AA9AD834130D3BC7",
    0x000003: "0DF3D9422ACA56E547676D07AD6BADFA",
    0x000004: "279C0F6AEED0BE652B2C733E1383AE91",
    0x000005: "5F8DC6D2C845C125508DDC048093B83F",
    0x000007: "0C8F780B7C8B49D0AE84A9EB2A6CE660",
    0x00000F: "93DD5B956C4878472E453AAEFD32A5AA",
    0x000015: "E161D1956A61F6D2F37AFD7F9CC3699A",
    0x0FF800: "F9CDFEBF4F5B1D9EB3EC12454527E176",
    0x0FF801: "5BEE92627E97825C911BF619DF72CA3B",
    0x0FF880: "CA8225C587124DFBB87F279C0BE29727",
    0x0FFC00: "F9430DF975082491C77BE4EF4FDB91EE",
    0x100000: "AA4D58DB653EC74A48C75F2F047DD2B5",
}

# A.4.2: the ISO format 0 PIN block of PIN 1234, PAN 4012345678909, under the PIN variant.
PIN_BLOCK = bytes.fromhex("041274EDCBA9876F")
TDES_PIN_VARIANT = bytes.fromhex("00000000000000FF00000000000000FF")
TDES_ENCRYPTED_PIN_BLOCKS = {
    0x000001: "1B9C1845EB993A7A",
    0x000002: "10A01C8D02C69107",
    0x0FF800: "33365F5CC6F23C35",
    0x100000: "73EC88AD0AC5830E",
}

SAMPLE_TEXT = b"4012345678909D987"
# X9.24-1:2009 data variants (request and response), each encrypted with itself (A.4.1).
TDES_DATA_CIPHERTEXTS = {
    0x000001: (
        "FC0D53B7EA1FDA9EE68AAF2E70D9B9506229BE2AA993F04F",
        "1FCC89AF66222F27B903898BB2BC8589CDBFDE5EC6AFCC25",
    ),
    0x000002: (
        "A2B4E70F846E63D68775B7215EB4563DFD3037244C61CC13",
        "5B692A6B1FDD5E25B0DEFAFDE1672E402F8011360CFF3508",
    ),
    0x000005: (
        "9FD7BD1EC28845ACA93367A9DA9317BD555C6B33AE22D365",
        "7D4C109E49E83355A556AE949EED359F4404E7A2F0167C00",
    ),
}
# The data key (request) of counter 8, as ID TECH's decryption samples give it.
TDES_DATA_KEY_8 = bytes.fromhex("C39B2778B058AC376FB18DC906F75CBA")
# A sample reader swipe for that KSN, encrypted under the PIN variant (what readers set to
# "PIN encryption key" do: ID TECH field 8 bit 6, MagTek's default on older heads): a track 1,
# not a deck card, so checked by its digest.
SAMPLE_SWIPE_CIPHERTEXT = bytes.fromhex(
    "C25C1D1197D31CAA87285D59A892047426D9182EC11353C051ADD6D0F072A6CB"
    "3436560B3071FC1FD11D9F7E74886742D9BEE0CFD1EA1064C213BB55278B2F12"
)
SAMPLE_SWIPE_LENGTH = 60
SAMPLE_SWIPE_SHA256 = "ecd82c5dfa78c5859e512445fb8779d0f187a64a5ba58224de09821732d41255"

AES_BDK_128 = dukpt.AES_TEST_BDK
AES_BDK_256 = AES_BDK_128 * 2
AES_IKID = bytes.fromhex("1234567890123456")
AES_IK_128 = bytes.fromhex("1273671EA26AC29AFA4D1084127652A1")
AES_IK_256 = bytes.fromhex("CE9CE0C101D1138F97FB6CAD4DF045A7083D4EAE2D35A31789D01CCF0949550F")

# X9.24-3:2017 supplement: counter -> intermediate derivation key ("transaction key").
AES_TRANSACTION_KEYS = {
    0x00000001: "4F21B565BAD9835E112B6465635EAE44",
    0x00000002: "2F34D68DE10F68D38091A73B9E7C437C",
    0x00000003: "031504E530365CF81264238540518318",
    0x00000004: "0EEFC7ADA628BA68878DA9165A8A1887",
    0x00000005: "C2A7AC328A5DA2D6002D62465BFC028B",
    0x00000006: "D30F7D9351DA58448A2F5E92B4EE3B7D",
    0x00000007: "A8253CEED9AC042C54F75D35C8352278",
    0x00000008: "718EE6CF0B27E53D5F7AF99C4D8146A2",
    0x0001FFFE: "E21E8C8D347F8561A2BE752DAA85A111",
    0x00020000: "F7AE9025468A25D37B7249CFFED224C8",
    0x00020001: "692C8EA4013645135B36497131DF9D2C",
    0xFFFE2000: "48E585B694EB0B18D5C35443E163C0BA",
    0xFFFE4000: "396C2C7CA1EA701C03B86B7D41F0C562",
    0xFFFE8000: "0387625F189B58AE03EF0E8CCA41105E",
    0xFFFF0000: "F6BA59389BD14A9855BE9727E7C52E3C",
}
# Data encryption (request: usage 0x3000; response: 0x3001) of SAMPLE_TEXT, CBC, zero IV.
AES_DATA_CIPHERTEXTS = {
    0x00000001: (
        "E5AFA5B408A3310E3D779C8A9A2AE29448BD5B4232582090DB703AF647205A79",
        "84904DFC6B5201A4F1FE2EAA49E70B8C01838EF53030790FF785D630AB3916B4",
    ),
    0x00000004: (
        "D074C0F81866781B92D008C8EA6A3947319B94361C7ECD3C1736020E0D57E629",
        "08A3D4FB24E9CA4864F63E1AB518C69327D87A6A709B9336E3E60FA7F312759A",
    ),
    0x00000007: (
        "0710C8F0EB136629E30ADFB148562F6F80B786EC1074428B7C7511B7301EAAF0",
        "8CA084F21F599C7361C8F2B1565D993779C62EC3496F0113DF17B5C29EA4E404",
    ),
}


def tdes_ksn(counter: int) -> bytes:
    return (int.from_bytes(TDES_IKSN, "big") | counter).to_bytes(10, "big")


def aes_ksn(counter: int) -> bytes:
    return AES_IKID + counter.to_bytes(4, "big")


def xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def tdes_ecb(key: bytes, block: bytes) -> bytes:
    encryptor = Cipher(TripleDES(key + key[:8]), modes.ECB()).encryptor()
    return encryptor.update(block) + encryptor.finalize()


# -- TDES (X9.24-1:2009) -------------------------------------------------------------------


def test_tdes_ipek_is_the_standards() -> None:
    assert dukpt.initial_key(TDES_BDK, TDES_IKSN, TDES) == TDES_IPEK
    # the counter bits of the KSN do not enter the IPEK
    assert dukpt.initial_key(TDES_BDK, tdes_ksn(0x15), TDES) == TDES_IPEK


@pytest.mark.parametrize("counter", sorted(TDES_TRANSACTION_KEYS))
def test_tdes_transaction_keys_are_the_standards(counter: int) -> None:
    key = dukpt.transaction_key(TDES_BDK, tdes_ksn(counter), TDES)
    assert key.hex().upper() == TDES_TRANSACTION_KEYS[counter]


@pytest.mark.parametrize("counter", sorted(TDES_ENCRYPTED_PIN_BLOCKS))
def test_tdes_pin_variant_encrypts_the_standards_pin_blocks(counter: int) -> None:
    pin_key = xor(dukpt.transaction_key(TDES_BDK, tdes_ksn(counter), TDES), TDES_PIN_VARIANT)
    assert tdes_ecb(pin_key, PIN_BLOCK).hex().upper() == TDES_ENCRYPTED_PIN_BLOCKS[counter]


@pytest.mark.parametrize("counter", sorted(TDES_DATA_CIPHERTEXTS))
def test_tdes_data_variants_encrypt_the_standards_data(counter: int) -> None:
    request, response = TDES_DATA_CIPHERTEXTS[counter]
    ksn = tdes_ksn(counter)
    assert dukpt.encrypt(TDES_BDK, ksn, TDES, SAMPLE_TEXT).hex().upper() == request
    assert (
        dukpt.encrypt(TDES_BDK, ksn, TDES, SAMPLE_TEXT, KeyVariant.RESPONSE).hex().upper()
        == response
    )
    padded = dukpt.decrypt(TDES_BDK, ksn, TDES, bytes.fromhex(request))
    assert padded == SAMPLE_TEXT + bytes(24 - len(SAMPLE_TEXT))


def test_tdes_data_key_is_the_variant_encrypted_with_itself() -> None:
    ksn = tdes_ksn(8)
    variant = xor(
        dukpt.transaction_key(TDES_BDK, ksn, TDES),
        bytes.fromhex("0000000000FF00000000000000FF0000"),
    )
    expected = tdes_ecb(variant, variant[:8]) + tdes_ecb(variant, variant[8:])
    assert dukpt.data_key(TDES_BDK, ksn, TDES) == expected == TDES_DATA_KEY_8


def test_a_pin_variant_reader_swipe_decrypts_under_the_pin_variant_only() -> None:
    ksn = tdes_ksn(8)
    pin_key = xor(dukpt.transaction_key(TDES_BDK, ksn, TDES), TDES_PIN_VARIANT)
    decryptor = Cipher(TripleDES(pin_key + pin_key[:8]), modes.CBC(bytes(8))).decryptor()
    clear = decryptor.update(SAMPLE_SWIPE_CIPHERTEXT) + decryptor.finalize()
    track = clear[:SAMPLE_SWIPE_LENGTH]
    assert track.startswith(b"%B") and track.endswith(b"?")
    assert clear[SAMPLE_SWIPE_LENGTH:] == bytes(len(clear) - SAMPLE_SWIPE_LENGTH)
    assert hashlib.sha256(track).hexdigest() == SAMPLE_SWIPE_SHA256
    # our data key (the data variant, one-way) is another key: it does not decrypt it
    data_variant = dukpt.decrypt(TDES_BDK, ksn, TDES, SAMPLE_SWIPE_CIPHERTEXT)
    assert not data_variant.startswith(b"%B")


# -- AES (X9.24-3:2017) --------------------------------------------------------------------


def test_aes_initial_keys_are_the_standards() -> None:
    assert dukpt.initial_key(AES_BDK_128, aes_ksn(0), AES) == AES_IK_128
    assert dukpt.initial_key(AES_BDK_128, aes_ksn(0x1234), AES) == AES_IK_128
    assert dukpt.initial_key(AES_BDK_256, aes_ksn(0), AES) == AES_IK_256


@pytest.mark.parametrize("counter", sorted(AES_TRANSACTION_KEYS))
def test_aes_transaction_keys_are_the_standards(counter: int) -> None:
    key = dukpt.transaction_key(AES_BDK_128, aes_ksn(counter), AES)
    assert key.hex().upper() == AES_TRANSACTION_KEYS[counter]


@pytest.mark.parametrize("counter", sorted(AES_DATA_CIPHERTEXTS))
def test_aes_data_keys_encrypt_the_standards_data(counter: int) -> None:
    request, response = AES_DATA_CIPHERTEXTS[counter]
    ksn = aes_ksn(counter)
    assert dukpt.encrypt(AES_BDK_128, ksn, AES, SAMPLE_TEXT).hex().upper() == request
    assert (
        dukpt.encrypt(AES_BDK_128, ksn, AES, SAMPLE_TEXT, KeyVariant.RESPONSE).hex().upper()
        == response
    )
    padded = dukpt.decrypt(AES_BDK_128, ksn, AES, bytes.fromhex(response), KeyVariant.RESPONSE)
    assert padded == SAMPLE_TEXT + bytes(32 - len(SAMPLE_TEXT))


def test_aes_bidirectional_key_differs_from_the_one_way_keys() -> None:
    ksn = aes_ksn(1)
    keys = {dukpt.data_key(AES_BDK_128, ksn, AES, variant) for variant in KeyVariant}
    assert len(keys) == len(KeyVariant)


def test_tdes_has_no_bidirectional_data_variant() -> None:
    with pytest.raises(DukptError):
        dukpt.data_key(TDES_BDK, tdes_ksn(1), TDES, KeyVariant.BIDIRECTIONAL)


# -- counters ------------------------------------------------------------------------------


def test_counter_reads_the_ksns_counter_bits() -> None:
    assert dukpt.counter(tdes_ksn(0x15), TDES) == 0x15
    assert dukpt.counter(bytes.fromhex("FFFF9876543210FFFFFF"), TDES) == 0x1FFFFF
    assert dukpt.counter(aes_ksn(0xFFFF0000), AES) == 0xFFFF0000


def test_usable_counters_are_those_with_at_most_the_allowed_one_bits() -> None:
    assert dukpt.usable_counters(TDES) == 1_048_575  # 1..2^21-1 with <= 10 one-bits
    assert dukpt.usable_counters(AES) == 2_448_023_842  # 1..2^32-1 with <= 16 one-bits


def test_counter_exhaustion_counts_usable_counters_spent() -> None:
    assert dukpt.counter_exhaustion(TDES_IKSN, TDES) == 0.0
    assert dukpt.counter_exhaustion(tdes_ksn(1), TDES) == 1 / 1_048_575
    # counter 0x0FF800 follows every counter below it with <= 10 one-bits
    assert dukpt.counter_exhaustion(tdes_ksn(0x1FF800), TDES) == 1.0
    assert dukpt.counter_exhaustion(aes_ksn(0xFFFF0000), AES) == 1.0
    middle = dukpt.counter_exhaustion(tdes_ksn(0x100000), TDES)
    assert 0.4 < middle < 0.6


def test_next_ksn_follows_the_readers_sequence() -> None:
    # A.4.3: after 0x0FF800 come 0x0FF801, 0x0FF802, 0x0FF804 ... (10 one-bits at most)
    ksn = tdes_ksn(0x0FF801)
    sequence = []
    for _ in range(4):
        ksn = dukpt.next_ksn(ksn, TDES)
        sequence.append(dukpt.counter(ksn, TDES))
    assert sequence == [0x0FF802, 0x0FF804, 0x0FF808, 0x0FF810]
    assert dukpt.counter(dukpt.next_ksn(tdes_ksn(0x0FFC00), TDES), TDES) == 0x100000
    assert dukpt.counter(dukpt.next_ksn(aes_ksn(0x1FFFE), AES), AES) == 0x20000


def test_next_ksn_refuses_an_exhausted_counter() -> None:
    with pytest.raises(DukptError, match="exhausted"):
        dukpt.next_ksn(tdes_ksn(0x1FF800), TDES)
    with pytest.raises(DukptError, match="exhausted"):
        dukpt.next_ksn(aes_ksn(0xFFFF0000), AES)


@pytest.mark.parametrize("counter", [0, 0x0007FF])  # the IKSN; 11 one-bits
def test_keys_are_refused_for_counters_no_reader_uses(counter: int) -> None:
    with pytest.raises(DukptError):
        dukpt.data_key(TDES_BDK, tdes_ksn(counter), TDES)


# -- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bdk", "ksn", "scheme"),
    [
        (TDES_BDK[:8], tdes_ksn(1), TDES),  # single-length BDK
        (TDES_BDK, tdes_ksn(1)[:8], TDES),  # short KSN
        (TDES_BDK, aes_ksn(1), TDES),  # an AES KSN
        (AES_BDK_128[:15], aes_ksn(1), AES),
        (AES_BDK_128, tdes_ksn(1), AES),
    ],
)
def test_wrong_lengths_are_refused(bdk: bytes, ksn: bytes, scheme: DukptScheme) -> None:
    with pytest.raises(DukptError) as raised:
        dukpt.encrypt(bdk, ksn, scheme, SAMPLE_TEXT)
    assert isinstance(raised.value, DriverError) and isinstance(raised.value, ValueError)
    with pytest.raises(DukptError):
        dukpt.counter_exhaustion(ksn[:3], scheme)


@pytest.mark.parametrize("scheme", list(DukptScheme))
def test_ciphertext_not_in_whole_blocks_is_refused(scheme: DukptScheme) -> None:
    bdk, ksn = (TDES_BDK, tdes_ksn(1)) if scheme is TDES else (AES_BDK_128, aes_ksn(1))
    with pytest.raises(DukptError, match="block"):
        dukpt.decrypt(bdk, ksn, scheme, bytes(scheme.block_bytes + 1))


@given(
    scheme=st.sampled_from(list(DukptScheme)),
    counter=st.integers(min_value=1, max_value=0x0FFFFF),
    plaintext=st.binary(max_size=120),
    variant=st.sampled_from([KeyVariant.REQUEST, KeyVariant.RESPONSE]),
)
def test_encrypt_decrypt_round_trip(
    scheme: DukptScheme, counter: int, plaintext: bytes, variant: KeyVariant
) -> None:
    if scheme is TDES:
        bdk, ksn = TDES_BDK, tdes_ksn(counter)
    else:
        bdk, ksn = AES_BDK_128, aes_ksn(counter)
    assume(bin(counter).count("1") <= dukpt.max_one_bits(scheme))
    ciphertext = dukpt.encrypt(bdk, ksn, scheme, plaintext, variant)
    assert len(ciphertext) % scheme.block_bytes == 0
    assert len(ciphertext) - len(plaintext) in range(scheme.block_bytes)
    clear = dukpt.decrypt(bdk, ksn, scheme, ciphertext, variant)
    assert clear[: len(plaintext)] == plaintext
    assert not any(clear[len(plaintext) :])


@pytest.mark.parametrize(
    ("scheme", "ksn", "key"),
    [
        (TDES, "FFFF9876543210E00012", "FFFF9876543210E00000"),  # 21 counter bits
        (TDES, "FFFF9876543210FFFFFF", "FFFF9876543210E00000"),
        (AES, "123456789012345600000A0B", "123456789012345600000000"),  # 32 counter bits
    ],
)
def test_the_key_id_is_the_ksn_without_its_counter(scheme: DukptScheme, ksn: str, key: str) -> None:
    assert dukpt.key_id(bytes.fromhex(ksn), scheme).hex().upper() == key
