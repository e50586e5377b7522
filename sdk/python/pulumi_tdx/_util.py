"""Shared SDK plumbing: the owner tag and the default URI."""

from __future__ import annotations

import pulumi

DEFAULT_URI = "qemu:///system"


def owner(resource_name: str) -> dict[str, str]:
    """Project/stack/resource of the declaring program: our mark on every libvirt object."""
    return {"project": pulumi.get_project(), "stack": pulumi.get_stack(), "resource": resource_name}
