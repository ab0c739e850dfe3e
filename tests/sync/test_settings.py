"""SyncSettings: defaults valid, plain field types, range errors name the field."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from posd.config import load_config
from posd.errors import ConfigError
from sync.errors import SettingsError
from sync.pacing.lane import configured_share
from sync.settings import SyncSettings

PLAIN_TYPES = {str, int, float, bool, str | None, float | None, int | None}
MINIMAL_CONFIG = """
[terminal]
store_id = "s1"
terminal_id = "t1"
mode = "development"

[keys]
provider = "local"
local_key_file = "kek.b64"
"""


def test_defaults_are_valid_and_fields_plain() -> None:
    settings = SyncSettings()
    assert settings.max_entries_per_request == 10
    assert settings.max_request_bytes == 262144
    hints = typing.get_type_hints(SyncSettings)
    for item in dataclasses.fields(SyncSettings):
        assert hints[item.name] in PLAIN_TYPES, item.name


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_entries_per_request", 11),
        ("max_entries_per_request", 0),
        ("max_request_bytes", 2 * 1024 * 1024),
        ("min_in_flight", 0),
        ("initial_in_flight", 99),
        ("throttle_decrease_factor", 1.0),
        ("rate_decrease_factor", 1.0),
        ("rate_min_per_second", 0.0),
        ("rate_recovery_seconds", 0.0),
        ("backoff_base_seconds", 0.0),
        ("backoff_cap_seconds", 0.1),
        ("probe_max_seconds", 0.5),
        ("offline_after_failures", 0),
        ("lease_seconds", 5.0),
        ("max_read_timeout_seconds", 5.0),
        ("retention_seconds", -1.0),
        ("max_unacknowledged_seconds", 3600.0),  # under the default retention (a day)
        ("watermark_poll_seconds", 0.0),
        ("watermark_table", ""),
        ("watermark_table", "posd watermarks"),
        ("source", "aws.events"),
        ("event_bus_name", ""),
        ("fair_rate_reread_seconds", 0.0),
        ("fair_rate_parameter", "posd fair rate"),
        ("fair_rate_parameter", "posd/fair-rate"),  # a hierarchy starts with '/'
        ("fair_rate_parameter", "/posd//fair-rate"),
        ("fair_rate_parameter", "/posd/fair-rate/"),
        ("fair_rate_parameter", "/aws/posd/fair-rate"),  # reserved prefixes
        ("fair_rate_parameter", "SSM-fair-rate"),
        ("fair_rate_parameter", "/" + "/".join(["level"] * 16)),
        ("fair_rate_parameter", "r" * 1012),
        ("fair_rate_parameter", "arn:aws:ssm:eu-west-1:123456789012:parameter/posd/rate"),
    ],
)
def test_out_of_range_names_the_field(field: str, value: object) -> None:
    with pytest.raises(SettingsError) as caught:
        SyncSettings(**{field: value})  # type: ignore[arg-type]
    assert caught.value.field == field
    assert str(caught.value).startswith(f"sync.{field}: ")
    assert isinstance(caught.value, ValueError)


def test_the_lease_outlives_the_longest_read_timeout() -> None:
    with pytest.raises(SettingsError) as caught:
        SyncSettings(max_read_timeout_seconds=40.0)  # 2 x (3 + 40) > the 60 s lease
    assert caught.value.field == "lease_seconds"
    assert "max read timeout" in str(caught.value)
    assert SyncSettings(max_read_timeout_seconds=40.0, lease_seconds=86.0).lease_seconds == 86.0


def test_acknowledged_retention_defaults_keep_records_as_long_as_the_dlq() -> None:
    settings = SyncSettings()
    assert settings.acknowledged_retention is True
    assert settings.max_unacknowledged_seconds == 14 * 86400
    assert settings.watermark_table == "posd-watermarks"
    assert settings.watermark_poll_seconds == 300
    # With no retention a record may go unproven at once: a choice, not a typo.
    assert SyncSettings(retention_seconds=0, max_unacknowledged_seconds=0).retention_seconds == 0


@pytest.mark.parametrize(
    "name",
    ["", "posd-fair-rate", "/posd/prod/fair-rate", "/" + "/".join(["level"] * 15), "r" * 1011],
)
def test_the_fair_rate_parameter_is_off_or_an_ssm_parameter_name(name: str) -> None:
    assert SyncSettings().fair_rate_parameter == ""  # off unless the chain publishes one
    assert SyncSettings(fair_rate_parameter=name).fair_rate_parameter == name


@pytest.mark.parametrize(
    ("line", "key", "expected"),
    [
        ("watermark_table = 'a'", "sync.watermark_table", "DynamoDB table name"),
        ("watermark_poll_seconds = -5", "sync.watermark_poll_seconds", "must be > 0"),
        ("max_unacknowledged_seconds = 60", "sync.max_unacknowledged_seconds", "retention"),
        ("acknowledged_retention = 'yes'", "sync.acknowledged_retention", "expected"),
        ("fair_rate_parameter = 'posd rate'", "sync.fair_rate_parameter", "SSM parameter name"),
    ],
)
def test_the_config_file_names_the_bad_key(
    tmp_path: Path, line: str, key: str, expected: str
) -> None:
    path = tmp_path / "posd.toml"
    path.write_text(f"{MINIMAL_CONFIG}[sync]\n{line}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {key}:"), message
    assert expected in message


@pytest.mark.parametrize(
    ("changes", "field", "expected"),
    [
        ({"fleet_quota_per_second": 0.0, "fleet_size": 10}, "fleet_quota_per_second", "> 0"),
        ({"fleet_quota_per_second": 500.0, "fleet_size": 0}, "fleet_size", ">= 1"),
        ({"fleet_quota_per_second": 500.0}, "fleet_size", "both or neither"),
        ({"fleet_size": 1000}, "fleet_quota_per_second", "both or neither"),
        ({"lane_rate_per_second": -1.0}, "lane_rate_per_second", "> 0"),
        (
            {"lane_rate_per_second": 1.0, "fleet_quota_per_second": 500.0, "fleet_size": 10},
            "lane_rate_per_second",
            "one or the other",
        ),
    ],
)
def test_fleet_settings_name_the_bad_key(
    changes: dict[str, float], field: str, expected: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        SyncSettings(**changes)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert expected in str(caught.value)


@given(quota=st.floats(0.01, 1e6), size=st.integers(1, 1_000_000))
def test_the_configured_share_is_the_quota_over_the_fleet(quota: float, size: int) -> None:
    settings = SyncSettings(fleet_quota_per_second=quota, fleet_size=size)
    assert configured_share(settings) == pytest.approx(quota / size)


def test_nothing_configured_means_no_share_and_a_lane_rate_is_taken_as_is() -> None:
    assert configured_share(SyncSettings()) is None
    assert configured_share(SyncSettings(lane_rate_per_second=0.75)) == 0.75


def test_the_config_file_takes_the_fleet_keys_and_names_a_bad_one(tmp_path: Path) -> None:
    path = tmp_path / "posd.toml"
    path.write_text(f"{MINIMAL_CONFIG}[sync]\nfleet_quota_per_second = 5000\nfleet_size = 10000\n")
    assert configured_share(load_config(path).sync) == pytest.approx(0.5)
    path.write_text(f"{MINIMAL_CONFIG}[sync]\nfleet_quota_per_second = 5000\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}: sync.fleet_size:"), str(caught.value)
    path.write_text(f"{MINIMAL_CONFIG}[sync]\nlane_rate_per_second = 'fast'\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}: sync.lane_rate_per_second:")
