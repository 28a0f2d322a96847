"""Reading template.yaml for the local runtime: functions, their events and environment,
queues, the bucket's notifications and the table, with intrinsic functions resolved
against local values. The template stays the one description of the stack."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PSEUDO = {
    "AWS::StackName": "local",
    "AWS::AccountId": "123456789012",
    "AWS::Region": "us-east-1",
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
}


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short forms: ``!Ref X`` becomes ``{"Ref": "X"}`` and so on."""


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load(path: Path) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass


@dataclass
class FunctionSpec:
    logical_id: str
    code_dir: Path
    module: str
    handler: str
    environment: dict[str, str]
    queues: list[tuple[str, int]] = field(default_factory=list)  # (queue logical id, batch size)
    routes: list[tuple[str, str]] = field(default_factory=list)  # (METHOD, /path/{param})
    schedules: list[tuple[str, Any]] = field(default_factory=list)  # (expression, input)
    memory_mb: int = 128  # Lambda's defaults, when neither the function nor Globals say
    timeout_seconds: int = 3


@dataclass
class Notification:
    queue: str  # logical id
    prefix: str
    suffix: str


class Template:
    """The template with parameters and resources resolvable to local names."""

    def __init__(self, path: Path, parameters: dict[str, str], physical: dict[str, dict[str, str]] | None = None):
        self.path = path
        self.root = path.parent
        self.doc = load(path)
        self.resources: dict[str, dict[str, Any]] = self.doc.get("Resources", {})
        self.parameters = {name: str(spec.get("Default", "")) for name, spec in self.doc.get("Parameters", {}).items()}
        unknown = set(parameters) - set(self.parameters)
        if unknown:
            raise ValueError(f"the template has no parameters {sorted(unknown)}")
        self.parameters.update(parameters)
        # Resource logical id -> {"Ref": ..., "Arn": ..., other attributes}; filled as resources are made.
        self.physical: dict[str, dict[str, str]] = physical or {}

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {lid: r for lid, r in self.resources.items() if r.get("Type") == kind}

    # -- intrinsic functions -------------------------------------------------------------
    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (name, arg), = value.items()
            if name == "Ref":
                return self._ref(arg)
            if name == "Fn::GetAtt":
                return self._attribute(arg[0], arg[1])
            if name == "Fn::Sub":
                return self._sub(arg)
            if name == "Fn::Join":
                return arg[0].join(str(self.resolve(v)) for v in arg[1])
            if name.startswith("Fn::"):
                raise ValueError(f"the local runtime does not resolve {name}")
        return {k: self.resolve(v) for k, v in value.items()}

    def _ref(self, name: str) -> str:
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.physical:
            return self.physical[name]["Ref"]
        raise ValueError(f"!Ref {name}: not a parameter, and no local resource was made for it")

    def _attribute(self, name: str, attribute: str) -> str:
        try:
            return self.physical[name][attribute]
        except KeyError:
            raise ValueError(f"!GetAtt {name}.{attribute}: no local value") from None

    def _sub(self, arg: Any) -> str:
        text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def replace(match: re.Match[str]) -> str:
            token = match.group(1)
            if token in extra:
                return str(extra[token])
            if "." in token:
                resource, attribute = token.split(".", 1)
                return self._attribute(resource, attribute)
            return str(self._ref(token))

        return re.sub(r"\$\{([^}!]+)\}", replace, text)

    # -- what the local runtime needs ------------------------------------------------------
    def functions(self) -> list[FunctionSpec]:
        globals_function = self.doc.get("Globals", {}).get("Function", {})
        globals_env = globals_function.get("Environment", {}).get("Variables", {})
        specs = []
        for logical_id, resource in self.of_type("AWS::Serverless::Function").items():
            props = resource["Properties"]
            module, _, handler = props["Handler"].rpartition(".")
            env = {**globals_env, **props.get("Environment", {}).get("Variables", {})}
            spec = FunctionSpec(logical_id, self.root / props["CodeUri"], module, handler,
                                {k: str(self.resolve(v)) for k, v in env.items()})
            for setting, attribute in (("MemorySize", "memory_mb"), ("Timeout", "timeout_seconds")):
                value = props.get(setting, globals_function.get(setting))
                if value is not None:
                    setattr(spec, attribute, int(self.resolve(value)))
            for event in props.get("Events", {}).values():
                event_props = event.get("Properties", {})
                if event["Type"] == "SQS":
                    queue = event_props["Queue"]["Fn::GetAtt"][0]
                    spec.queues.append((queue, int(event_props.get("BatchSize", 10))))
                elif event["Type"] == "Api":
                    spec.routes.append((event_props["Method"].upper(), event_props["Path"]))
                elif event["Type"] == "Schedule":
                    spec.schedules.append((self.resolve(event_props["Schedule"]), event_props.get("Input")))
            specs.append(spec)
        return specs

    def notifications(self, bucket: str) -> list[Notification]:
        config = self.resources[bucket]["Properties"].get("NotificationConfiguration", {})
        found = []
        for queue_config in config.get("QueueConfigurations", []):
            rules = {r["Name"]: r["Value"] for r in queue_config.get("Filter", {}).get("S3Key", {}).get("Rules", [])}
            found.append(Notification(queue_config["Queue"]["Fn::GetAtt"][0], rules.get("prefix", ""),
                                      rules.get("suffix", "")))
        return found
