"""The development-config builder: what it renders loads with the daemon's real parser, the
values come back as given, and a key the parser refuses fails when the file is written."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from demo.devconfig import (
    DevConfig,
    local_keys,
    render_toml,
    serial_card_reader,
    simulated_card_reader,
    simulated_palm,
)
from posd.config import load_config
from posd.errors import ConfigError
from tests.terminal_identity import lane_identity


def full_config(tmp_path: Path) -> DevConfig:
    return DevConfig(
        store_id="store-dev",
        terminal_id="lane-03",
        mode="production",
        state_dir=tmp_path / "state",
        api={"socket": "run/api.sock", "socket_group": ""},
        aws={"region": "eu-west-1", "events_endpoint_url": "http://127.0.0.1:4566"},
        keys={"provider": "kms", "kms_key_id": "alias/lane", "rotate_after_records": 25},
        identity=lane_identity(tmp_path / "pki", "store-dev", "lane-03"),
        journal={"checkpoint_every_records": 10, "min_free_bytes": 2**40},
        sync={"event_bus_name": "bus-1", "source": "posd.dev", "backoff_base_seconds": 0.02},
        offline={"max_payment_amount": 3000, "max_pending_age_seconds": 0},
        devices={
            "card_reader": serial_card_reader("/dev/pts/7"),
            "palm_scanner": simulated_palm(
                {"alice": "tok-alice", 'bob "b"': "badge-1"}, present="alice", scan_time_s=0.0
            ),
        },
    )


def test_the_rendered_config_loads_and_its_values_round_trip(tmp_path: Path) -> None:
    built = full_config(tmp_path)
    path = built.write(tmp_path / "posd.toml")
    assert tomllib.loads(path.read_text()) == built.document()
    config = load_config(path)
    assert (config.store_id, config.terminal_id, config.terminal.mode) == (
        "store-dev",
        "lane-03",
        "production",
    )
    assert config.state_dir == tmp_path / "state"
    assert config.api.socket == tmp_path / "run" / "api.sock"
    assert config.api.socket_group == ""
    assert config.aws.region == "eu-west-1"
    assert config.aws.events_endpoint_url == "http://127.0.0.1:4566"
    assert (config.keys.provider, config.keys.kms_key_id) == ("kms", "alias/lane")
    assert config.keys.rotate_after_records == 25
    assert config.journal.checkpoint_every_records == 10
    assert config.journal.min_free_bytes == 2**40
    assert (config.sync.event_bus_name, config.sync.source) == ("bus-1", "posd.dev")
    assert config.sync.backoff_base_seconds == 0.02
    assert config.offline.max_payment_amount == 3000
    reader, palm = config.devices["card_reader"], config.devices["palm_scanner"]
    assert (reader.driver, reader.options["port"]) == ("serial", "/dev/pts/7")
    assert palm.driver == "simulated"
    assert palm.options["identities"] == {"alice": "tok-alice", 'bob "b"': "badge-1"}
    assert palm.options["present"] == "alice"
    assert config.identity.certificate_file == tmp_path / "pki" / "terminal.pem"


def test_development_defaults_load(tmp_path: Path) -> None:
    config = load_config(DevConfig("store-dev", "lane-01").write(tmp_path / "posd.toml"))
    assert config.terminal.mode == "development"
    assert config.state_dir == tmp_path / "state"
    assert config.keys.provider == "local"
    assert config.keys.local_key_file == tmp_path / local_keys()["local_key_file"]
    assert config.devices["card_reader"].driver == simulated_card_reader()["driver"]


def test_amended_changes_only_the_named_keys(tmp_path: Path) -> None:
    built = full_config(tmp_path)
    amended = built.amended(sync={"api": "v2", "source": "posd.other"}, aws={"profile": "p"})
    assert amended.sync == {**built.sync, "api": "v2", "source": "posd.other"}
    assert amended.aws == {**built.aws, "profile": "p"}
    assert (amended.keys, amended.devices, amended.offline) == (
        built.keys,
        built.devices,
        built.offline,
    )
    assert built.sync["source"] == "posd.dev"  # the original is left as it was


@pytest.mark.parametrize(
    ("built", "key"),
    [
        (DevConfig("s", "t", sync={"event_bus": "typo"}), "sync.event_bus"),
        (DevConfig("s", "t", offline={"max_payment_amount": -1}), "offline.max_payment_amount"),
        (DevConfig("s", "t", mode="production"), "keys.provider"),
        (
            DevConfig("s", "t", mode="production", keys={"kms_key_id": "alias/k"}),
            "identity.certificate_file",
        ),
        (DevConfig("s", "t", devices={"card_reader": {"driver": "nope"}}), "devices.card_reader"),
    ],
)
def test_a_key_the_parser_refuses_fails_when_written(
    tmp_path: Path, built: DevConfig, key: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        built.write(tmp_path / "posd.toml")
    assert key in str(refused.value)


RENDER_EXAMPLES = 50  # nested tables are costly to draw: the unit tier stays fast
SCALARS = st.one_of(
    st.text(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.booleans(),
)


@settings(max_examples=RENDER_EXAMPLES)
@given(
    st.dictionaries(
        st.text(min_size=1),
        st.dictionaries(
            st.text(min_size=1),
            st.one_of(SCALARS, st.lists(SCALARS, max_size=3), st.dictionaries(st.text(), SCALARS)),
            min_size=1,
        ),
        min_size=1,
    )
)
def test_any_table_of_scalars_round_trips_through_toml(document: dict[str, object]) -> None:
    assert tomllib.loads(render_toml(document)) == document
