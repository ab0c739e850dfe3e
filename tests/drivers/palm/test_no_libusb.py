"""The simulated palm scanner needs no libusb: run it where pyusb cannot load any backend."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from tests.repo import REPO_ROOT

REPO = REPO_ROOT

SCRIPT = textwrap.dedent(
    """
    import json, sys
    # Make every native pyusb backend unimportable, as on a box without libusb.
    for name in ("usb.backend.libusb1", "usb.backend.libusb0", "usb.backend.openusb"):
        sys.modules[name] = None
    import usb.core
    try:
        usb.core.find()
        default_backend = "found"
    except ImportError:
        default_backend = "missing"

    from drivers.errors import DriverUnavailable
    from drivers.palm.scanner import PalmScanner
    from drivers.registry import driver_class

    scanner = driver_class(PalmScanner, "simulated")(
        identities={"alice": "tok-7f3a9c2e51d04b8a"}, present="alice"
    )
    with scanner:
        result = scanner.identify(2.0)
    real = driver_class(PalmScanner, "amazon-one")(vendor_id=0x1D6B, product_id=0x0104)
    try:
        real.open()
        real_error = None
    except DriverUnavailable as error:
        real_error = error.code
    print(json.dumps({
        "default_backend": default_backend,
        "outcome": str(result.outcome),
        "masked": result.credential.masked(),
        "real_driver": real_error,
    }))
    """
)


def test_simulated_path_runs_without_any_libusb_backend() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report == {
        "default_backend": "missing",  # proves no libusb backend was reachable at all
        "outcome": "match",
        "masked": "****************4b8a",
        "real_driver": "driver_unavailable",  # the real driver says so cleanly
    }
