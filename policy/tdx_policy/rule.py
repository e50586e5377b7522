"""One rule: which resources it reads, what it checks, how hard it enforces."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from .resources import Resource, resource_from

# A check yields one message per violation; each names the resource and the property.
Check = Callable[[Resource, Mapping[str, Any]], Iterable[str]]


def rule(*, name: str, description: str, level: EnforcementLevel, kinds: tuple[str, ...],
         check: Check, config: dict[str, dict[str, Any]] | None = None) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        resource = resource_from(args.resource_type, args.name, args.props)
        if resource is None or resource.kind not in kinds:
            return
        for message in check(resource, args.get_config() or {}):
            report_violation(message, None)

    return ResourceValidationPolicy(
        name=name, description=description, enforcement_level=level, validate=validate,
        config_schema=PolicyConfigSchema(properties=config) if config else None,
    )


def string_list(description: str) -> dict[str, Any]:
    return {"type": "array", "items": {"type": "string"}, "default": [],
            "description": description}


def string_map(description: str, pattern: str | None = None) -> dict[str, Any]:
    values: dict[str, Any] = {"type": "string"}
    if pattern:
        values["pattern"] = pattern
    return {"type": "object", "additionalProperties": values, "default": {},
            "description": description}
