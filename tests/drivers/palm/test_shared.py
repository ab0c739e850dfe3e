"""The palm-scanner contract, run against every backend (the simulator, real hardware).

Only the `PalmScanner` API is used here, never a driver's internals, so any future palm or
biometric identity driver can be added to the `rig` fixture and must pass the same suite.
"""

from __future__ import annotations

import threading
import time

import pytest

from drivers.errors import DeviceOperationError
from drivers.outcomes import Cancelled, Outcome, TimedOut
from drivers.palm.identity import Matched, NoMatch
from drivers.registry import PALM_SCANNER
from tests.drivers.palm.conftest import ALICE, ALICE_TOKEN, BOB, BOB_BADGE, PalmRig

SHORT_S = 0.3


def test_open_reports_identity_in_health(rig: PalmRig) -> None:
    health = rig.scanner.health()
    assert rig.scanner.device_class == PALM_SCANNER
    assert health.connected
    assert health.info is not None
    assert health.info.firmware and health.info.serial_number and health.info.model
    assert health.info.port.startswith("usb:")


def test_no_palm_times_out_as_an_outcome_not_an_error(rig: PalmRig) -> None:
    started = time.monotonic()
    result = rig.scanner.identify(SHORT_S)
    elapsed = time.monotonic() - started
    assert isinstance(result, TimedOut)
    assert result.outcome is Outcome.TIMEOUT
    assert SHORT_S * 0.9 <= elapsed < SHORT_S + 1.5
    assert rig.scanner.health().connected


def test_cancel_from_another_thread_ends_identify(rig: PalmRig) -> None:
    timer = threading.Timer(0.1, rig.scanner.cancel)
    timer.start()
    started = time.monotonic()
    try:
        result = rig.scanner.identify(5.0)
    finally:
        timer.cancel()
    assert isinstance(result, Cancelled)
    assert time.monotonic() - started < 2.0


def test_identify_works_again_after_a_cancel(rig: PalmRig) -> None:
    threading.Timer(0.05, rig.scanner.cancel).start()
    assert isinstance(rig.scanner.identify(5.0), Cancelled)
    assert isinstance(rig.scanner.identify(SHORT_S), TimedOut)


def test_enrolled_palm_matches_with_its_credential(rig: PalmRig) -> None:
    rig.present(ALICE)
    result = rig.scanner.identify(2.0)
    assert isinstance(result, Matched)
    assert result.credential.reveal() == ALICE_TOKEN
    assert 0.0 < result.confidence <= 1.0
    assert ALICE_TOKEN not in repr(result) and ALICE_TOKEN not in str(result)


def test_each_identity_gets_its_own_credential(rig: PalmRig) -> None:
    rig.present(BOB)
    result = rig.scanner.identify(2.0)
    assert isinstance(result, Matched)
    assert result.credential.reveal() == BOB_BADGE


def test_unknown_palm_is_no_match(rig: PalmRig) -> None:
    rig.present("mallory")
    assert isinstance(rig.scanner.identify(2.0), NoMatch)


def test_palm_presented_during_the_wait_is_read(rig: PalmRig) -> None:
    if rig.device is None:
        pytest.skip("needs a palm presented at the real device")
    threading.Timer(0.15, rig.device.present_palm, args=(ALICE,)).start()
    result = rig.scanner.identify(2.0)
    assert isinstance(result, Matched)


@pytest.mark.parametrize("timeout", [0.0, -1.0, 10_000.0])
def test_out_of_range_timeouts_are_refused(rig: PalmRig, timeout: float) -> None:
    with pytest.raises(ValueError, match="timeout"):
        rig.scanner.identify(timeout)


def test_close_is_idempotent_and_identify_needs_an_open_device(rig: PalmRig) -> None:
    rig.scanner.close()
    rig.scanner.close()
    assert not rig.scanner.health().connected
    with pytest.raises(DeviceOperationError, match="not open"):
        rig.scanner.identify(SHORT_S)
