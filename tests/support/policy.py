"""Run the policy pack in process through pulumi-policy's own analyzer service: the code the
CLI calls over gRPC (property deserialisation, unknown values, config, enforcement levels)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2

from tests.support.stack import REPO_ROOT

POLICY_DIR = REPO_ROOT / "policy"
if str(POLICY_DIR) not in sys.path:
    sys.path.insert(0, str(POLICY_DIR))

from pulumi_policy import EnforcementLevel  # noqa: E402
from pulumi_policy.policy import _PolicyAnalyzerServicer  # noqa: E402
from tdx_policy.pack import NAME, POLICIES  # noqa: E402

# What the engine sends for a value that is not known during preview (a string output).
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
DYNAMIC = "pulumi-python:dynamic/tdx:"
NATIVE = "tdx:index:"


@dataclass(frozen=True)
class Diagnostic:
    policy: str
    level: str  # "advisory" or "mandatory"
    message: str


def analyze(resource_type: str, name: str, props: dict[str, Any],
            config: dict[str, dict[str, Any]] | None = None) -> list[Diagnostic]:
    """The pack's diagnostics for one resource whose (checked) inputs are ``props``."""
    servicer = _PolicyAnalyzerServicer(NAME, "0.1.0", POLICIES, EnforcementLevel.MANDATORY)
    if config:
        request = analyzer_pb2.ConfigureAnalyzerRequest()
        for policy, values in config.items():
            entry = analyzer_pb2.PolicyConfig()
            entry.properties.update(values)
            request.policyConfig[policy].CopyFrom(entry)
        servicer.Configure(request, None)
    properties = struct_pb2.Struct()
    json_format.ParseDict(json.loads(json.dumps(props)), properties)
    response = servicer.Analyze(analyzer_pb2.AnalyzeRequest(
        type=resource_type, name=name, urn=f"urn:pulumi:test::p::{resource_type}::{name}",
        properties=properties), None)
    levels = {analyzer_pb2.ADVISORY: "advisory", analyzer_pb2.MANDATORY: "mandatory"}
    return [Diagnostic(d.policyName, levels.get(d.enforcementLevel, str(d.enforcementLevel)),
                       d.message) for d in response.diagnostics]
