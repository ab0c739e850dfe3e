"""cloud/template.yaml against the code: the tables' keys, the handler, its environment, and
the promises the issue makes about the roles (cfn-lint checks the rest in `make lint`)."""

from __future__ import annotations

import importlib
import json
from typing import Any

import yaml

from cloud.tables import TABLE_ENV, TABLE_SCHEMAS
from tests.repo import REPO_ROOT
from wire.keys import RSA_ALGORITHM

TEMPLATE = REPO_ROOT / "cloud" / "template.yaml"


class CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short forms (!Ref, !GetAtt, !Sub) kept as {tag: value}."""


def _tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {suffix: value}


CfnLoader.add_multi_constructor("!", _tagged)


def resources() -> dict[str, Any]:
    return dict(yaml.load(TEMPLATE.read_text(), Loader=CfnLoader)["Resources"])


def of_type(kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in resources().items() if r["Type"] == kind}


def test_the_tables_have_the_keys_the_code_uses() -> None:
    tables = of_type("AWS::DynamoDB::Table")
    function = of_type("AWS::Lambda::Function")["ConsumerFunction"]["Properties"]
    env = function["Environment"]["Variables"]
    for name, schema in TABLE_SCHEMAS.items():
        logical = env[TABLE_ENV[name]]["Ref"]
        declared = tables[logical]["Properties"]
        for part in ("KeySchema", "AttributeDefinitions", "GlobalSecondaryIndexes"):
            assert declared.get(part) == schema.get(part), (name, part)
    assert len(tables) == len(TABLE_SCHEMAS)


def test_the_handler_exists_and_reports_partial_batch_failures() -> None:
    function = of_type("AWS::Lambda::Function")["ConsumerFunction"]["Properties"]
    module, name = function["Handler"].rsplit(".", 1)
    assert callable(getattr(importlib.import_module(module), name))
    (mapping,) = of_type("AWS::Lambda::EventSourceMapping").values()
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    queue = resources()["EventsQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"GetAtt": "EventsDeadLetterQueue.Arn"}


def test_terminals_never_get_decrypt_and_their_data_keys_are_pinned_to_their_context() -> None:
    policy = resources()["TerminalPolicy"]["Properties"]["PolicyDocument"]
    text = json.dumps(policy)
    assert "kms:Decrypt" not in text
    (data_keys,) = (s for s in policy["Statement"] if s["Action"] == "kms:GenerateDataKey")
    pinned = data_keys["Condition"]["StringEquals"]
    # posd.keys.factory.encryption_context: exactly these keys
    assert set(pinned) == {"kms:EncryptionContext:store_id", "kms:EncryptionContext:terminal_id"}
    for key in ("JournalKey", "OfflineKey"):
        statements = resources()[key]["Properties"]["KeyPolicy"]["Statement"]
        denied = [s for s in statements if s["Effect"] == "Deny" and "kms:Decrypt" in s["Action"]]
        assert denied and denied[0]["Principal"] == {"AWS": {"GetAtt": "TerminalRole.Arn"}}


def test_the_offline_key_is_what_posds_offline_provider_needs() -> None:
    key = resources()["OfflineKey"]["Properties"]
    assert key["KeySpec"].startswith("RSA_") and key["KeyUsage"] == "ENCRYPT_DECRYPT"
    consumer = resources()["ConsumerPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    (unwrap,) = (s for s in consumer if s["Resource"] == {"GetAtt": "OfflineKey.Arn"})
    assert unwrap["Condition"]["StringEquals"]["kms:EncryptionAlgorithm"] == RSA_ALGORITHM


def test_the_contract_names_the_schemas_the_event_format_documents() -> None:
    """The terminal and the consumer share `wire.events` (tests/wire checks that what one
    builds the other reads); the document is the contract for every other consumer."""
    from wire import events

    document = (TEMPLATE.parents[1] / "docs" / "event-format.md").read_text()
    names = ("ALARM_SCHEMA", "ALARM_DETAIL_TYPE", "CHECKPOINT_SCHEMA", "CHECKPOINT_DETAIL_TYPE")
    for name in (*names, "TAMPERED_RECORD_ALARM"):
        value = getattr(events, name)
        assert f"`{value}`" in document or f'"{value}"' in document, name
    assert f"`{events.EVENT_SCHEMA}`" in document


def test_the_key_policy_refuses_another_store_or_another_terminal_each_on_its_own() -> None:
    """The keys of one condition are ANDed: a single Deny naming both would let a terminal
    through with its own terminal_id and another store's id."""
    statements = resources()["JournalKey"]["Properties"]["KeyPolicy"]["Statement"]
    pinned = [
        set(s["Condition"]["StringNotEquals"])
        for s in statements
        if s["Effect"] == "Deny" and s["Action"] == "kms:GenerateDataKey"
    ]
    assert sorted(map(sorted, pinned)) == [
        ["kms:EncryptionContext:store_id"],
        ["kms:EncryptionContext:terminal_id"],
    ]
