"""cloud/template.yaml against the code: the tables' keys, the handler, its environment, and
the promises the issue makes about the roles (cfn-lint checks the rest in `make lint`)."""

from __future__ import annotations

import functools
import importlib
import json
import re
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


@functools.cache
def loaded() -> dict[str, Any]:
    """The template, parsed once (tests only read it)."""
    return dict(yaml.load(TEMPLATE.read_text(), Loader=CfnLoader))


def resources() -> dict[str, Any]:
    return dict(loaded()["Resources"])


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
    mappings = of_type("AWS::Lambda::EventSourceMapping").values()
    assert mappings
    for mapping in mappings:
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
    consumer = statements("ConsumerPolicy")
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


# -- step 9: the stack a chain deploys (docs/cloud-stack.md) ------------------------------------

POLICY_FILE = REPO_ROOT / "systemd" / "iam-terminal-policy.json"
STACK_DOC = REPO_ROOT / "docs" / "cloud-stack.md"
APP_TAG = {"Key": "app", "Value": "posd"}
DLQ_RETENTION_SECONDS = 1_209_600  # 14 days: SQS's maximum, and what terminals wait for
POISON_RECEIVES = 3


def template() -> dict[str, Any]:
    return loaded()


def parameter_default(value: Any) -> Any:
    """A property's value, or the default of the parameter it refers to."""
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return template()["Parameters"][value["Ref"]]["Default"]
    return value


def terminal_detail_types() -> set[str]:
    """Every DetailType a terminal sends: its record kinds (`sync.events`: DetailType is the
    record's kind) and its side events (`wire.events`)."""
    from posd.capture import CARD_PAYMENT, PALM_PAYMENT
    from posd.daemon.payments import VOID_KIND
    from wire.events import SIDE_DETAIL_TYPES

    return {CARD_PAYMENT, PALM_PAYMENT, VOID_KIND, *SIDE_DETAIL_TYPES}


def statements(resource: str, policy: str = "PolicyDocument") -> list[dict[str, Any]]:
    """The policy's statements; one under `!If` as it is when its condition holds."""
    found = resources()[resource]["Properties"][policy]["Statement"]
    return [s["If"][1] if "If" in s else s for s in found]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_the_template_lints_clean_informational_checks_included() -> None:
    """`make lint` runs cfn-lint without the I-level rules; this runs them too."""
    from cfnlint.api import ManualArgs, lint_file  # type: ignore[import-untyped]

    matches = lint_file(TEMPLATE, config=ManualArgs(include_checks=["I"]))
    assert [f"{m.rule.id} line {m.linenumber}: {m.message}" for m in matches] == []


def test_the_v2_bus_delivers_in_terminal_order_to_a_fifo_queue_the_consumer_reads() -> None:
    (bus,) = of_type("AWS::EventsV2::EventBus").values()
    retention = bus["Properties"]["StorageConfiguration"]["RetentionPeriodInDays"]
    # replayable as long as a dead-letter queue keeps what failed
    assert parameter_default(retention) * 86_400 >= DLQ_RETENTION_SECONDS
    subscribers = of_type("AWS::EventsV2::Subscriber")
    fifo = [s["Properties"] for s in subscribers.values() if s["Properties"].get("Type") == "FIFO"]
    (subscriber,) = fifo
    invoke = subscriber["InvokeConfiguration"]
    queue_name = invoke["TargetArn"]["GetAtt"].split(".")[0]
    queue = resources()[queue_name]["Properties"]
    assert queue["FifoQueue"] is True
    # the consumer dedupes on event_id; SQS must not drop a second, different body
    assert queue["ContentBasedDeduplication"] is False
    # one FIFO group per terminal: the EventGroupId the terminal sets (store_id/terminal_id)
    assert "$events.SystemMetadata.EventGroupId" in invoke["SqsParameters"]["MessageGroupId"]
    assert invoke["SqsParameters"]["MessageDeduplicationId"]
    role = resources()[invoke["RoleArn"]["GetAtt"].split(".")[0]]
    assert role["Type"] == "AWS::IAM::Role"
    trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert {"Service": "events.amazonaws.com"} in [s["Principal"] for s in trust]
    failures = subscriber["OnFailureConfiguration"]["Arn"]["GetAtt"].split(".")[0]
    assert resources()[failures]["Type"] == "AWS::SQS::Queue"
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"GetAtt": f"{failures}.Arn"}
    mappings = [m["Properties"] for m in of_type("AWS::Lambda::EventSourceMapping").values()]
    sources = {m["EventSourceArn"]["GetAtt"]: m["FunctionName"] for m in mappings}
    assert sources[f"{queue_name}.Arn"] == {"Ref": "ConsumerFunction"}
    assert sources["EventsQueue.Arn"] == {"Ref": "ConsumerFunction"}


def test_terminals_send_only_their_source_and_detail_types_to_either_bus() -> None:
    (put,) = (s for s in statements("TerminalPolicy") if s["Action"] == "events:PutEvents")
    assert sorted(map(json.dumps, as_list(put["Resource"]))) == sorted(
        map(json.dumps, [{"GetAtt": "EventBus.Arn"}, {"GetAtt": "EventBusV2.EventBusArn"}])
    )
    assert put["Effect"] == "Allow"
    pinned = put["Condition"]["StringEquals"]
    assert as_list(pinned["events:source"]) == [{"Ref": "TerminalSource"}]
    assert set(as_list(pinned["events:detail-type"])) == terminal_detail_types()
    # the consumer's own alarms can never come from a terminal
    from cloud.alarms import CONSUMER_ALARM_DETAIL_TYPE, CONSUMER_ALARM_SOURCE

    assert CONSUMER_ALARM_DETAIL_TYPE not in terminal_detail_types()
    source = template()["Parameters"]["TerminalSource"]
    assert re.fullmatch(source["AllowedPattern"], source["Default"])
    assert not re.fullmatch(source["AllowedPattern"], CONSUMER_ALARM_SOURCE)


PLACEHOLDERS = {
    "JournalKey.Arn": "arn:aws:kms:REGION:ACCOUNT:key/JOURNAL_KEY_ID",
    "OfflineKey.Arn": "arn:aws:kms:REGION:ACCOUNT:key/OFFLINE_RSA_KEY_ID",
    "EventBus.Arn": "arn:aws:events:REGION:ACCOUNT:event-bus/BUS_NAME",
    # a v2 bus's ARN ends in an id the service picks: the file names any id of that name
    "EventBusV2.EventBusArn": "arn:aws:events:REGION:ACCOUNT:event-busv2/BUS_NAME/*",
    "WatermarksTable.Arn": "arn:aws:dynamodb:REGION:ACCOUNT:table/WATERMARKS_TABLE",
}
FAIR_RATE_ARN = (
    "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${FairRateParameter}"
)
SUB_PLACEHOLDERS = {FAIR_RATE_ARN: "arn:aws:ssm:REGION:ACCOUNT:parameter/posd/STACK_NAME/fair-rate"}


def normalised(value: Any, defaults: dict[str, Any]) -> Any:
    """The template's policy with its intrinsic functions as the JSON file's placeholders."""
    if isinstance(value, dict) and set(value) == {"Sub"}:
        return SUB_PLACEHOLDERS[value["Sub"]]
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in ("GetAtt", "Ref"):
        ((tag, target),) = value.items()
        return PLACEHOLDERS[target] if tag == "GetAtt" else defaults[target]
    if isinstance(value, dict):
        return {key: normalised(item, defaults) for key, item in value.items()}
    if isinstance(value, list):
        return [normalised(item, defaults) for item in value]
    return value


def canonical(value: Any) -> Any:
    """Order-free: IAM reads a list of actions, resources or values as a set."""
    if isinstance(value, dict):
        return {key: canonical(item) for key, item in value.items()}
    if isinstance(value, list):
        return sorted((canonical(item) for item in value), key=json.dumps)
    return value


def test_the_policy_file_is_the_templates_terminal_policy() -> None:
    """systemd/iam-terminal-policy.json is for chains that do not deploy the template."""
    parameters = template()["Parameters"]
    defaults = {name: p.get("Default") for name, p in parameters.items()}
    from_template = normalised(
        resources()["TerminalPolicy"]["Properties"]["PolicyDocument"], defaults
    )
    in_file = json.loads(POLICY_FILE.read_text().replace(defaults["BusName"], "BUS_NAME"))
    assert canonical(in_file) == canonical(from_template)


def test_terminals_read_only_their_own_proven_watermarks() -> None:
    (read,) = (
        s for s in statements("TerminalPolicy") if "dynamodb:GetItem" in as_list(s["Action"])
    )
    assert as_list(read["Action"]) == ["dynamodb:GetItem"]
    assert read["Resource"] == {"GetAtt": "WatermarksTable.Arn"}
    leading = read["Condition"]["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"]
    assert as_list(leading) == [
        "${aws:PrincipalTag/x509Subject/OU}/${aws:PrincipalTag/x509Subject/CN}"
    ]
    from wire.watermark import LANE_SEPARATOR

    assert LANE_SEPARATOR == "/"


def test_lanes_read_only_the_fair_rate_parameter_and_it_holds_a_rate() -> None:
    """[sync] fair_rate_parameter: GetParameter on that one parameter, whose value (initial
    and any later put: SSM checks AllowedPattern) is what sync.fair_rate reads as a rate."""
    from sync.fair_rate import DECIMAL_PATTERN, parse_fair_rate

    reads = [s for s in statements("TerminalPolicy") if str(s["Action"]).startswith("ssm:")]
    assert [(s["Action"], s["Resource"]) for s in reads] == [
        ("ssm:GetParameter", {"Sub": FAIR_RATE_ARN})
    ]
    parameter = resources()["FairRateParameter"]
    assert parameter["Type"] == "AWS::SSM::Parameter"
    properties = parameter["Properties"]
    assert properties["AllowedPattern"] == f"^{DECIMAL_PATTERN}$"
    initial = template()["Parameters"][properties["Value"]["Ref"]]
    assert initial["AllowedPattern"] == f"^{DECIMAL_PATTERN}$"
    assert parse_fair_rate(initial["Default"]) > 0
    outputs = template()["Outputs"]
    assert outputs["FairRateParameterName"]["Value"] == {"Ref": "FairRateParameter"}
    endpoint = next(
        e["Properties"]
        for e in of_type("AWS::EC2::VPCEndpoint").values()
        if e["Properties"]["ServiceName"] == {"Sub": "com.amazonaws.${AWS::Region}.ssm"}
    )
    (allowed,) = endpoint["PolicyDocument"]["Statement"]
    assert (allowed["Action"], allowed["Resource"]) == ("ssm:GetParameter", {"Sub": FAIR_RATE_ARN})


def test_the_consumer_republishes_the_fair_rate_when_given_the_quota() -> None:
    """cloud.fair_rate: its settings from the function's environment (only with a quota:
    without one the chain sets the parameter itself), writing that one parameter, counting
    lanes with a Scan of the watermarks table."""
    from cloud.fair_rate import FAIR_RATE_ENV

    function = of_type("AWS::Lambda::Function")["ConsumerFunction"]["Properties"]
    env = function["Environment"]["Variables"]
    condition, named, unset = env[FAIR_RATE_ENV.parameter]["If"]
    assert named == {"Ref": "FairRateParameter"} and unset == {"Ref": "AWS::NoValue"}
    assert template()["Conditions"][condition] == {
        "Not": [{"Equals": [{"Ref": "PutEventsQuota"}, "0"]}]
    }
    assert template()["Parameters"]["PutEventsQuota"]["Default"] == "0"
    for name in ("quota", "share", "floor"):
        assert getattr(FAIR_RATE_ENV, name) in env, name
    consumer = statements("ConsumerPolicy")
    (write,) = (s for s in consumer if "ssm:PutParameter" in as_list(s["Action"]))
    assert sorted(as_list(write["Action"])) == ["ssm:GetParameter", "ssm:PutParameter"]
    assert write["Resource"] == {"Sub": FAIR_RATE_ARN}
    (scan,) = (s for s in consumer if "dynamodb:Scan" in as_list(s["Action"]))
    assert as_list(scan["Action"]) == ["dynamodb:Scan"]
    assert scan["Resource"] == {"GetAtt": "WatermarksTable.Arn"}


def test_terminals_reach_dynamodb_and_the_v2_bus_over_the_vpn() -> None:
    endpoints = {
        json.dumps(e["Properties"]["ServiceName"]): e["Properties"]
        for e in of_type("AWS::EC2::VPCEndpoint").values()
    }
    for service in ("dynamodb", "eventsv2", "events", "kms", "rolesanywhere", "ssm"):
        name = json.dumps({"Sub": f"com.amazonaws.${{AWS::Region}}.{service}"})
        # a gateway endpoint is only a route table entry: nothing a VPN can reach
        assert endpoints[name]["VpcEndpointType"] == "Interface", service


def test_operators_receive_alarms_through_a_topic_eventbridge_can_encrypt_for() -> None:
    topic = resources()["AlarmTopic"]["Properties"]
    key_name = topic["KmsMasterKeyId"]["Ref"]  # a customer managed key, not alias/aws/sns
    key = resources()[key_name]
    assert key["Type"] == "AWS::KMS::Key"
    allowed = {
        service
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s["Effect"] == "Allow"
        and {"kms:GenerateDataKey*", "kms:Decrypt"} <= set(as_list(s["Action"]))
        for service in as_list(s["Principal"].get("Service", []))
    }
    assert {"events.amazonaws.com", "cloudwatch.amazonaws.com"} <= allowed
    publishers = {
        service
        for s in statements("AlarmTopicPolicy")
        for service in as_list(s["Principal"].get("Service", []))
    }
    assert {"events.amazonaws.com", "cloudwatch.amazonaws.com"} <= publishers


def alarms() -> list[dict[str, Any]]:
    return [a["Properties"] for a in of_type("AWS::CloudWatch::Alarm").values()]


def dimensions(alarm: dict[str, Any]) -> dict[str, Any]:
    return {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])}


def test_every_alarm_reaches_the_topic() -> None:
    assert alarms()
    for alarm in alarms():
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}], alarm["AlarmDescription"]


def test_every_consumer_alarm_name_has_a_cloudwatch_alarm() -> None:
    from cloud.alarms import CONSUMER_ALARMS
    from cloud.metrics import ALARM_DIMENSION, ALARMS_RAISED, METRICS_NAMESPACE, METRICS_SERVICE

    watched = {
        dimensions(a)[ALARM_DIMENSION]
        for a in alarms()
        if a.get("MetricName") == ALARMS_RAISED
        and a["Namespace"] == METRICS_NAMESPACE
        and dimensions(a).get("service") == METRICS_SERVICE
    }
    assert watched == set(CONSUMER_ALARMS)


def test_queues_the_function_and_the_rules_are_watched() -> None:
    def watched(namespace: str, metric: str) -> list[dict[str, Any]]:
        return [
            dimensions(a)
            for a in alarms()
            if a.get("Namespace") == namespace and a.get("MetricName") == metric
        ]

    queues = of_type("AWS::SQS::Queue")
    dead = {n for n, q in queues.items() if "DeadLetter" in n}
    live = set(queues) - dead
    depth = watched("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert {d["QueueName"]["GetAtt"] for d in depth} >= {f"{n}.QueueName" for n in dead}
    age = watched("AWS/SQS", "ApproximateAgeOfOldestMessage")
    assert {d["QueueName"]["GetAtt"] for d in age} >= {f"{n}.QueueName" for n in live}
    for metric in ("Errors", "Throttles"):
        assert {"FunctionName": {"Ref": "ConsumerFunction"}} in watched("AWS/Lambda", metric)
    rules = {json.dumps(d.get("RuleName")) for d in watched("AWS/Events", "FailedInvocations")}
    for rule in ("TerminalEventsRule", "AlarmRule"):
        name = resources()[rule]["Properties"]["Name"]
        assert json.dumps(name) in rules, rule


def test_the_function_has_its_trust_anchor_metrics_and_watermarks() -> None:
    from cloud.metrics import METRICS_NAMESPACE, METRICS_SERVICE
    from cloud.trust import CA_ENV, CRL_ENV

    function = resources()["ConsumerFunction"]["Properties"]
    env = function["Environment"]["Variables"]
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == METRICS_NAMESPACE
    assert env["POWERTOOLS_SERVICE_NAME"] == METRICS_SERVICE
    assert env[CA_ENV] == {"Ref": "StoreCaCertificatePem"}
    assert env[CRL_ENV] == {"Ref": "CrlParameter"}
    assert env["WATERMARKS_TABLE"] == {"Ref": "WatermarksTable"}
    crl = resources()["CrlParameter"]
    assert crl["Type"] == "AWS::SSM::Parameter"
    assert crl["Properties"]["Value"] == {"Ref": "StoreCrlPem"}
    policy = statements("ConsumerPolicy")
    (read_crl,) = (s for s in policy if s["Sid"] == "ReadTheCrl")
    assert as_list(read_crl["Action"]) == ["ssm:GetParameter"]
    assert "CrlParameter" in json.dumps(read_crl["Resource"])
    (watermarks,) = (s for s in policy if s["Sid"] == "PublishProvenWatermarks")
    assert {"GetAtt": "WatermarksTable.Arn"} in as_list(watermarks["Resource"])
    assert "/index/watch-by-check" in json.dumps(watermarks["Resource"])  # the watched journals
    assert set(as_list(watermarks["Action"])) == {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:Query",
    }
    (layer,) = function["Layers"]
    assert "AWSLambdaPowertoolsPythonV3" in json.dumps(layer)
    assert "python3.12" in function["Runtime"] or "python3.11" in function["Runtime"]


def test_the_dashboard_shows_only_metrics_that_exist() -> None:
    from cloud.metrics import ALARMS_RAISED, METRICS_NAMESPACE, RECORDS_FILED, RECORDS_HELD

    (dashboard,) = of_type("AWS::CloudWatch::Dashboard").values()
    body_sub = dashboard["Properties"]["DashboardBody"]["Sub"]
    text = body_sub if isinstance(body_sub, str) else body_sub[0]
    body = json.loads(text)
    metrics = [
        line
        for widget in body["widgets"]
        if widget["type"] == "metric"
        for line in widget["properties"].get("metrics", [])
    ]
    consumer = {m[1] for m in metrics if m[0] == METRICS_NAMESPACE}
    assert consumer == {RECORDS_FILED, RECORDS_HELD, ALARMS_RAISED}
    searched = [w for w in body["widgets"] if ALARMS_RAISED in json.dumps(w)]
    assert any("Alarm" in json.dumps(w) for w in searched)  # by `Alarm` dimension
    namespaces = {m[0] for m in metrics if isinstance(m[0], str) and not m[0].startswith(".")}
    assert {"AWS/SQS", METRICS_NAMESPACE} <= namespaces


def test_dead_letter_queues_keep_messages_as_long_as_terminals_keep_records() -> None:
    queues = of_type("AWS::SQS::Queue")
    for name, queue in queues.items():
        retention = queue["Properties"]["MessageRetentionPeriod"]
        assert retention == DLQ_RETENTION_SECONDS, name
    document = STACK_DOC.read_text()
    assert f"{DLQ_RETENTION_SECONDS:,}" in document


def test_poison_messages_reach_a_dead_letter_queue_after_a_few_receives() -> None:
    redriven = [
        q["Properties"]["RedrivePolicy"]
        for q in of_type("AWS::SQS::Queue").values()
        if "RedrivePolicy" in q["Properties"]
    ]
    assert len(redriven) == 2  # the v1 queue and the v2 FIFO queue
    for policy in redriven:
        assert policy["maxReceiveCount"] == POISON_RECEIVES


def test_every_event_source_mapping_caps_concurrency() -> None:
    for name, mapping in of_type("AWS::Lambda::EventSourceMapping").items():
        cap = mapping["Properties"]["ScalingConfig"]["MaximumConcurrency"]
        assert 2 <= cap <= 10, name  # Lambda's minimum is 2; see docs/cloud-stack.md


def test_the_roles_anywhere_crl_is_enabled_on_the_trust_anchor() -> None:
    (crl,) = of_type("AWS::RolesAnywhere::CRL").values()
    assert crl["Properties"]["Enabled"] is True
    assert crl["Properties"]["TrustAnchorArn"] == {"GetAtt": "TrustAnchor.TrustAnchorArn"}
    assert crl["Properties"]["CrlData"] == {"Ref": "StoreCrlPem"}


def test_what_holds_data_outlives_the_stack() -> None:
    for kind in ("AWS::SQS::Queue", "AWS::DynamoDB::Table", "AWS::KMS::Key", "AWS::Logs::LogGroup"):
        for name, resource in of_type(kind).items():
            assert resource.get("DeletionPolicy") == "Retain", name
            assert resource.get("UpdateReplacePolicy") == "Retain", name
    for name, table in of_type("AWS::DynamoDB::Table").items():
        assert table["Properties"]["DeletionProtectionEnabled"] is True, name


def cfn_schema(kind: str) -> dict[str, Any]:
    """The resource type's schema as the installed cfn-lint knows it."""
    from importlib.resources import files

    schemas = files("cfnlint.data.schemas")
    digest = json.loads((schemas / "providers" / "us-east-1.json").read_text())[kind]
    return dict(json.loads((schemas / "resources" / f"{digest}.json").read_text()))


def test_everything_taggable_is_tagged() -> None:
    for name, resource in resources().items():
        if "Tags" not in cfn_schema(resource["Type"])["properties"]:
            continue
        tags = resource["Properties"].get("Tags")
        if isinstance(tags, dict):  # AWS::SSM::Parameter: a map
            tags = [{"Key": k, "Value": v} for k, v in tags.items()]
        assert tags and APP_TAG in tags, name


def test_the_log_group_exists_before_the_function_runs() -> None:
    """The function logs to the group the stack made (a Ref: CloudFormation creates the group
    first), so its first invocation cannot create an unmanaged one with no retention."""
    function = resources()["ConsumerFunction"]
    logging = function["Properties"]["LoggingConfig"]
    assert logging["LogGroup"] == {"Ref": "ConsumerLogGroup"}
    name = resources()["ConsumerLogGroup"]["Properties"]["LogGroupName"]
    assert "ConsumerFunction" not in json.dumps(name)  # no cycle: it is named first


def test_the_stack_document_has_the_stolen_terminal_runbook() -> None:
    document = STACK_DOC.read_text()
    for needle in (
        "A stolen terminal",
        "aws rolesanywhere",
        "aws ssm put-parameter",
        "forged_signature",
        "5 minutes",
    ):
        assert needle in document, needle


def test_terminals_may_describe_only_their_buses_for_doctor() -> None:
    """`posd doctor` checks the sink exists with DescribeEventBus (PutEvents has no dry run)."""
    (read,) = (s for s in statements("TerminalPolicy") if s["Action"] == "events:DescribeEventBus")
    assert read["Effect"] == "Allow"
    assert sorted(map(json.dumps, as_list(read["Resource"]))) == sorted(
        map(json.dumps, [{"GetAtt": "EventBus.Arn"}, {"GetAtt": "EventBusV2.EventBusArn"}])
    )
