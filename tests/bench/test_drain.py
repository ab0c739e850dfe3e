"""The drain benchmark stays runnable and measures what it says, on a tiny backlog.

Figures are not asserted here (performance is measured in bench/, never in tests); what is
asserted is the shape of the result: every RTT drained all the records, the theoretical limit
follows from the measured RTT, and the first RTT carries the bare boto3 loop over the same
entries, the endpoint's own capacity and the driver's profile.
"""

from __future__ import annotations

from tests.bench.run import run_bench

RECORDS = 120
RTTS_MS = (0.0, 5.0)
PROFILE_TOP = 5


def test_a_tiny_drain_bench_reports_every_rtt_and_the_bare_loop() -> None:
    result = run_bench(
        "drain.py", "--records", RECORDS, "--rtt-ms", *RTTS_MS, "--profile", PROFILE_TOP
    )
    runs = result["runs"]
    assert [run["injected_rtt_ms"] for run in runs] == list(RTTS_MS)
    for run in runs:
        assert run["events"] == RECORDS
        assert run["measured_rtt_ms"] >= run["injected_rtt_ms"]
        limit = run["in_flight"] * 10 / (run["measured_rtt_ms"] / 1000)
        assert abs(run["theoretical_events_per_second"] - limit) <= 0.01 * limit
    first, second = runs
    assert first["bare_boto3_loop"]["events"] == RECORDS
    assert first["endpoint_capacity"]["requests_per_second"] > 0
    assert "fraction_of_bare_loop" in first and "bare_boto3_loop" not in second
    assert len(first["driver_profile_top"]) == PROFILE_TOP + 1  # header + rows
    targets = result["targets"]
    assert set(targets) >= {"meets_bare_loop", "meets_cpu"}
    assert targets["fraction_of_bare_loop"] == first["fraction_of_bare_loop"]
    assert targets["cpu_ratio_to_bare_loop"] == first["cpu_ratio_to_bare_loop"]
