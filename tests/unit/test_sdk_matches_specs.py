"""The Python SDK says what the engine's typed specs say: the same inputs, the same defaults,
and docstrings written from the specs (scripts/sync_sdk_docs.py writes them)."""

from __future__ import annotations

import dataclasses

import pytest

import pulumi_tdx
from scripts.sync_sdk_docs import CLASSES, SDK, synced
from tdx_provider.specs import SPECS
from tdx_provider.specs.fields import NO_DEFAULT

ARGS = {"Pool": pulumi_tdx.PoolArgs, "BaseImage": pulumi_tdx.BaseImageArgs,
        "Overlay": pulumi_tdx.OverlayArgs, "CloudInitSeed": pulumi_tdx.CloudInitSeedArgs,
        "TrustDomain": pulumi_tdx.TrustDomainArgs}


@pytest.mark.parametrize(("module", "class_name"), sorted(CLASSES))
def test_docstrings_are_written_from_the_specs(module: str, class_name: str) -> None:
    source = (SDK / module).read_text()
    assert synced(source, class_name, CLASSES[module, class_name]) == source, (
        "run `.venv/bin/python scripts/sync_sdk_docs.py`")


@pytest.mark.parametrize("name", sorted(ARGS))
def test_args_have_the_specs_inputs_and_defaults(name: str) -> None:
    spec = SPECS[name]
    sdk = {f.name: f for f in dataclasses.fields(ARGS[name])}
    assert set(sdk) == {f.name for f in spec.public_inputs}
    for field in spec.public_inputs:
        given = sdk[field.name]
        if given.default is not dataclasses.MISSING:
            default = given.default
        elif given.default_factory is not dataclasses.MISSING:
            default = given.default_factory()
        else:
            default = NO_DEFAULT
        want = field.default if field.has_default else (NO_DEFAULT if field.required else None)
        assert default == want, f"{name}.{field.name}: SDK {default!r}, spec {want!r}"


@pytest.mark.parametrize("name", sorted(ARGS))
def test_declared_outputs_are_the_specs(name: str) -> None:
    annotations = getattr(pulumi_tdx, name).__annotations__  # strings (postponed evaluation)
    declared = {k for k, v in annotations.items() if str(v).startswith("pulumi.Output")}
    assert declared and declared <= {f.name for f in SPECS[name].outputs}


@pytest.mark.parametrize("name", sorted(ARGS))
def test_constructor_defaults_are_the_specs(name: str) -> None:
    import inspect

    params = inspect.signature(getattr(pulumi_tdx, name).__init__).parameters
    for field in SPECS[name].public_inputs:
        default = params[field.name].default
        if field.has_default and default is not None:
            assert default == field.default, f"{name}({field.name}=...)"


@pytest.mark.parametrize("name", sorted(ARGS))
def test_the_native_flavour_takes_the_specs_inputs(name: str) -> None:
    """``pulumi_tdx.native`` classes take the same keyword arguments as the specs' inputs
    (a class that takes ``**inputs`` checks them against the schema when called)."""
    import inspect

    from pulumi_tdx import native
    from pulumi_tdx.native._base import check_names

    cls = getattr(native, name)
    params = inspect.signature(cls.__init__).parameters
    given = {n for n, p in params.items() if p.kind is not inspect.Parameter.VAR_KEYWORD}
    given -= {"self", "resource_name", "opts"}
    wanted = {f.name for f in SPECS[name].public_inputs}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        assert given <= wanted
        check_names(cls._token, dict.fromkeys(wanted - given))  # every other input is taken
        with pytest.raises(TypeError, match="memroy_mib"):
            check_names(cls._token, {"memroy_mib": 1})  # and nothing else
    else:
        assert given == wanted
