"""The pulumi-tdx policy pack: Pulumi runs this directory (`--policy-pack policy`)."""

from pulumi_policy import EnforcementLevel, PolicyPack
from tdx_policy.pack import NAME, POLICIES

PolicyPack(name=NAME, policies=POLICIES, enforcement_level=EnforcementLevel.MANDATORY)
