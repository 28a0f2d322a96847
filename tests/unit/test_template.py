"""The template and samconfig as deployed: parameters, environments, alarms, the dashboard, policies."""

import json
import re
from collections import defaultdict
from pathlib import Path


def test_every_function_logs_to_a_group_of_the_template_that_keeps_lines_for_a_set_time():
    from sandbox.local.stack import ROOT
    from sandbox.local.template import load

    resources = load(ROOT / "template.yaml")["Resources"]
    functions = {lid: r for lid, r in resources.items() if r["Type"] == "AWS::Serverless::Function"}
    groups = [r["Properties"]["LoggingConfig"]["LogGroup"]["Ref"] for r in functions.values()]
    assert functions and len(set(groups)) == len(functions)
    for group in groups:
        assert resources[group]["Type"] == "AWS::Logs::LogGroup"
        assert resources[group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_every_alarm_of_the_template_tells_the_alarm_topic():
    from sandbox.local.stack import ROOT
    from sandbox.local.template import load

    resources = load(ROOT / "template.yaml")["Resources"]
    alarms = {lid: r for lid, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    # A dead-letter queue and files not complete, for each of three functions; a failed metadata refresh.
    assert sorted(alarms) == sorted([f"{name}{alarm}" for name in ("Monetate", "Optimove", "Mona")
                                     for alarm in ("DeadLetterAlarm", "FilesNotCompleteAlarm")] + ["MonetateFunctionErrorsAlarm"])
    errors = alarms["MonetateFunctionErrorsAlarm"]["Properties"]
    assert errors["MetricName"] == "Errors"
    assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "MonetateFunction"}}]
    assert all(r["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}] for r in alarms.values())
    assert resources["AlarmTopic"]["Type"] == "AWS::SNS::Topic"


def _deploy_parameters() -> dict[str, dict[str, str]]:
    import shlex
    import tomllib

    from sandbox.local.stack import ROOT

    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    return {env: dict(item.split("=", 1) for item in shlex.split(config[env]["deploy"]["parameters"]["parameter_overrides"]))
            for env in ("dev", "prod")}


def test_each_environment_of_samconfig_keeps_its_own_secrets():
    parameters = _deploy_parameters()
    names = ("MonetateSecretName", "OptimoveSecretName", "MonaSecretName")
    for env, values in parameters.items():
        assert all(f"/{env}/" in values[name] for name in names), (env, values)
    assert not {parameters["dev"][n] for n in names} & {parameters["prod"][n] for n in names}


def _stack_names() -> dict[str, str]:
    import tomllib

    from sandbox.local.stack import ROOT

    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    return {env: config[env]["deploy"]["parameters"]["stack_name"] for env in ("dev", "prod")}


def test_the_inbox_bucket_name_the_stack_name_makes_is_one_s3_takes_and_the_readme_says_which_names_do():
    from sandbox.local.stack import ROOT
    from sandbox.local.template import load

    made = load(ROOT / "template.yaml")["Resources"]["InboxBucket"]["Properties"]["BucketName"]["Fn::Sub"]

    def bucket_takes(stack_name):  # S3's rules for a bucket name in a standard region
        name = made.replace("${AWS::StackName}", stack_name).replace("${AWS::AccountId}", "123456789012")
        return bool(re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", name)) and ".." not in name

    assert all(bucket_takes(name) for name in _stack_names().values())
    readme = (ROOT / "README.md").read_text()
    longest = int(re.search(r"letters, digits and hyphens, at most (\d+) characters", readme)[1])
    assert bucket_takes("m" * longest) and not bucket_takes("m" * (longest + 1))
    assert not bucket_takes("MarketingBundle-Dev")


def _holds(condition, parameters):
    """A template rule's assertion, for the parameter values given (the rule functions it uses)."""
    if isinstance(condition, dict) and len(condition) == 1:
        (function, argument), = condition.items()
        if function == "Ref":
            return parameters[argument]
        if function == "Fn::Not":
            return not _holds(argument[0], parameters)
        if function == "Fn::Equals":  # CloudFormation compares the values as text
            return str(_holds(argument[0], parameters)) == str(_holds(argument[1], parameters))
        raise AssertionError(f"no evaluation for {function}")
    return condition


def test_the_template_refuses_to_deploy_with_the_retailer_shortname_left_as_samconfig_ships_it():
    from sandbox.local.stack import ROOT
    from sandbox.local.template import load

    template = load(ROOT / "template.yaml")
    assertions = [a["Assert"] for rule in template["Rules"].values() for a in rule["Assertions"]]

    def deployable(shortname):
        return all(_holds(a, {"RetailerShortname": shortname}) for a in assertions)

    assert all(not deployable(values["RetailerShortname"]) for values in _deploy_parameters().values())
    assert deployable("fifthlevelfashion")
    pattern = template["Parameters"]["RetailerShortname"]["AllowedPattern"]
    assert re.fullmatch(pattern, "fifth-level_2") and not re.fullmatch(pattern, "a/b") and not re.fullmatch(pattern, "")


def _lifecycle_rules(template, parameters):
    """The inbox's lifecycle rules as deployed with ``parameters``: Fn::If resolved, AWS::NoValue left out."""
    rules = []
    for rule in template["Resources"]["InboxBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]:
        if "Fn::If" in rule:
            name, when_true, when_false = rule["Fn::If"]
            rule = when_true if _holds(template["Conditions"][name], parameters) else when_false
        if rule != {"Ref": "AWS::NoValue"}:
            rules.append(rule)
    return rules


def test_dropped_files_expire_only_when_a_retention_is_set_and_then_under_every_inbox_prefix_alone():
    from sandbox.local.stack import ROOT
    from sandbox.local.template import load

    template = load(ROOT / "template.yaml")
    bucket = template["Resources"]["InboxBucket"]["Properties"]
    inbox = {rule["Value"] for queue in bucket["NotificationConfiguration"]["QueueConfigurations"]
             for rule in queue["Filter"]["S3Key"]["Rules"] if rule["Name"] == "prefix"}
    assert inbox == {"monetate/", "monetate-sessions/", "optimove/", "mona/"}
    kept = _lifecycle_rules(template, {"DroppedFileRetentionDays": "0", "AlarmEmail": ""})
    expiring = _lifecycle_rules(template, {"DroppedFileRetentionDays": "7", "AlarmEmail": ""})
    assert not inbox & {rule.get("Prefix") for rule in kept}
    assert {rule["Prefix"] for rule in expiring if rule.get("ExpirationInDays") == {"Ref": "DroppedFileRetentionDays"}} == inbox
    for rules in (kept, expiring):  # nothing expires the metadata snapshots, and cut-off uploads are aborted
        assert all(rule.get("Prefix") for rule in rules if "ExpirationInDays" in rule)
        assert any(rule.get("AbortIncompleteMultipartUpload") for rule in rules)


def test_each_file_function_knows_its_own_queue_and_may_send_to_it_and_hold_its_messages():
    from sandbox.local.stack import ROOT
    from sandbox.local.template import load

    resources = load(ROOT / "template.yaml")["Resources"]
    functions = {lid: r["Properties"] for lid, r in resources.items() if r["Type"] == "AWS::Serverless::Function"}
    for lid, props in functions.items():
        queues = [e["Properties"]["Queue"]["Fn::GetAtt"][0] for e in props["Events"].values() if e["Type"] == "SQS"]
        assert len(queues) == 1, lid
        assert props["Environment"]["Variables"]["FILE_QUEUE_URL"] == {"Ref": queues[0]}
        granted = {name for policy in props["Policies"] if isinstance(policy, dict) for name in policy
                   if policy[name] == {"QueueName": {"Fn::GetAtt": [queues[0], "QueueName"]}}}
        assert granted == {"SQSSendMessagePolicy", "SQSPollerPolicy"}, lid  # SendMessage; ChangeMessageVisibility
        # A run going on from an earlier one lists the report's versions (reports.RunReport.carried_over).
        statements = [s for policy in props["Policies"] if "Statement" in policy for s in policy["Statement"]]
        assert any(s["Action"] == "s3:ListBucketVersions" and s["Resource"] == {
            "Fn::Sub": "arn:${AWS::Partition}:s3:::${AWS::StackName}-inbox-${AWS::AccountId}"} for s in statements), lid
    # No policy grants sqs:GetQueueUrl: the code must not ask for a queue's URL.
    code = [path.read_text() for path in (ROOT / "layers" / "shared" / "martech").glob("*.py")]
    code += [path.read_text() for path in (ROOT / "functions").glob("*/app.py")]
    assert not any("get_queue_url" in text for text in code)


def test_the_functions_that_read_times_take_the_date_order_and_time_zone_the_template_is_given():
    from sandbox.local.stack import ROOT
    from sandbox.local.template import load

    template = load(ROOT / "template.yaml")
    assert template["Parameters"]["TimeZone"]["Default"] == ""  # none: times without an offset as before
    for function in ("MonetateFunction", "MonaFunction"):  # Monetate DATETIME fields, Mona times
        variables = template["Resources"][function]["Properties"]["Environment"]["Variables"]
        assert (variables["DATE_ORDER"], variables["TIME_ZONE"]) == ({"Ref": "DateOrder"}, {"Ref": "TimeZone"}), function


def test_the_dashboard_shows_metrics_the_functions_emit_and_every_file_metric_of_each_function():
    from sandbox.local.stack import ROOT
    from sandbox.local.template import load

    resources = load(ROOT / "template.yaml")["Resources"]
    body = json.loads(re.sub(r"\$\{[^}]+\}", "x", resources["BundleDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]))
    shown = {(metric[1], metric[3]) for widget in body["widgets"] for metric in widget["properties"].get("metrics", [])
             if metric[0] == "MarketingBundle"}
    emitted = set()
    shared = (ROOT / "layers" / "shared" / "martech" / "handlers.py").read_text()  # what every file function emits
    for service in ("monetate", "optimove", "mona"):
        code = (ROOT / "functions" / service / "app.py").read_text()
        names = set(re.findall(r'add_metric\(name="(\w+)"', code + shared))
        names |= set(re.findall(r'"((?:Records|Messages)\w+)": "', code))
        emitted |= {(name, service) for name in names | {"FilesNotComplete"}}
        assert re.search(r"dispatch\([^)]*metrics=metrics", code), service  # FileRetries is counted in dispatch
        files = {name for name in names if name.endswith(("Read", "Sent", "Rejected", "Failed"))}
        shown_for_every_function = files | {"FilesNotComplete", "FileRetries", "FileWaits"}
        assert len(files) == 4 and {(name, service) for name in shown_for_every_function} <= shown, service
    assert shown <= emitted  # nothing on the dashboard that no function emits


def test_the_csv_nulls_parameter_reaches_every_function_as_its_setting():
    from martech.settings import Settings

    from sandbox.local.template import Template

    template = Path(__file__).resolve().parents[2] / "template.yaml"
    made = {name: defaultdict(lambda: "made") for name in Template(template, {}).resources}  # every !Ref and !GetAtt resolves
    for parameters, expected in (({}, frozenset()), ({"CsvNulls": "NULL,\\N"}, frozenset({"NULL", "\\N"}))):
        specs = Template(template, parameters, made).functions()
        assert {spec.logical_id: Settings.from_env(spec.environment).csv_null_texts for spec in specs} == \
            {spec.logical_id: expected for spec in specs}, parameters


def test_every_function_may_put_its_file_events_on_the_bus_it_is_told():
    from sandbox.local.stack import ROOT
    from sandbox.local.template import load

    template = load(ROOT / "template.yaml")
    bus = template["Globals"]["Function"]["Environment"]["Variables"]["FILE_EVENT_BUS"]
    functions = {lid: r for lid, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
    assert len(functions) == 3
    for name, function in functions.items():
        allowed = [p["EventBridgePutEventsPolicy"]["EventBusName"] for p in function["Properties"]["Policies"]
                   if isinstance(p, dict) and "EventBridgePutEventsPolicy" in p]
        assert allowed == [bus], name
