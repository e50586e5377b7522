"""Input validation: names, paths, URIs, numbers, digests, argv, PCI addresses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tdx_provider import validation
from tdx_provider.errors import InputError
from tdx_provider.validation import PciAddress

NAME_RULE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
CANONICAL_BDF = re.compile(r"^[0-9a-f]{4}:[0-9a-f]{2}:[0-1][0-9a-f]\.[0-7]$")


def rejected(func: object, field: str, value: object, **kwargs: object) -> InputError:
    """Call ``func(field, value)``, expect an InputError naming ``field``, return it."""
    assert callable(func)
    with pytest.raises(InputError) as excinfo:
        func(field, value, **kwargs)
    assert excinfo.value.field == field
    assert str(excinfo.value).startswith(f"{field}: ")
    return excinfo.value


# --- names -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["td-1", "a.b_c", "A", "9lives", "x" * 63])
def test_name_accepts_letters_digits_dot_underscore_dash(value: str) -> None:
    assert validation.name("name", value) == value


@pytest.mark.parametrize(
    "value",
    ["a/b", "a..b", "..", "two words", "a<b", "a&b", "", "x" * 64, "-td", ".hidden", "td\n"],
    ids=[
        "slash",
        "dotdot",
        "only-dotdot",
        "space",
        "lt",
        "amp",
        "empty",
        "64-chars",
        "leading-dash",
        "leading-dot",
        "trailing-newline",
    ],
)
def test_name_rejects_unsafe_values(value: str) -> None:
    rejected(validation.name, "name", value)


@pytest.mark.parametrize("value", [None, 5, b"td-1"])
def test_name_rejects_non_strings(value: object) -> None:
    rejected(validation.name, "name", value)


def test_name_length_error_says_the_limit() -> None:
    assert "at most 63" in rejected(validation.name, "name", "x" * 64).reason


@given(st.text())
@example("td\n")
@example("a..b")
@example("-a")
@example("x" * 64)
def test_name_returns_its_input_only_when_it_follows_the_rule(value: str) -> None:
    try:
        result = validation.name("name", value)
    except InputError as exc:
        assert exc.field == "name"
        return
    assert result == value
    assert len(result) <= validation.NAME_MAX
    assert NAME_RULE.fullmatch(result)
    assert ".." not in result


@given(st.from_regex(NAME_RULE, fullmatch=True))
def test_name_accepts_every_short_name_matching_the_rule(value: str) -> None:
    if len(value) > validation.NAME_MAX or ".." in value:
        return
    assert validation.name("name", value) == value


# --- absolute paths --------------------------------------------------------------------------


def test_absolute_path_accepts_an_existing_file_and_normalises(tmp_path: Path) -> None:
    image = tmp_path / "base.qcow2"
    image.write_bytes(b"")
    assert validation.absolute_path("image", f"{tmp_path}//sub/../base.qcow2") == str(image)


def test_absolute_path_rejects_relative_paths() -> None:
    err = rejected(validation.absolute_path, "image", "images/base.qcow2", must_exist=False)
    assert "must be an absolute path" in err.reason


def test_absolute_path_rejects_a_missing_file_and_names_the_field(tmp_path: Path) -> None:
    missing = str(tmp_path / "absent.qcow2")
    err = rejected(validation.absolute_path, "firmware", missing)
    assert missing in err.reason
    assert "does not exist" in err.reason


def test_absolute_path_without_must_exist_accepts_a_missing_file(tmp_path: Path) -> None:
    missing = str(tmp_path / "later.log")
    assert validation.absolute_path("console_log", missing, must_exist=False) == missing


def test_absolute_path_directory_option_wants_a_directory(tmp_path: Path) -> None:
    a_file = tmp_path / "f"
    a_file.write_text("x")
    assert validation.absolute_path("dir", str(tmp_path), directory=True) == str(tmp_path)
    assert (
        "directory" in rejected(validation.absolute_path, "dir", str(a_file), directory=True).reason
    )
    rejected(validation.absolute_path, "image", str(tmp_path))  # a directory is not a file


@pytest.mark.parametrize("value", ["", None, "/tmp/a\nb", "/tmp/a\x00b"])
def test_absolute_path_rejects_empty_and_control_characters(value: object) -> None:
    rejected(validation.absolute_path, "image", value, must_exist=False)


# --- URIs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["qemu:///system", "qemu+ssh://h/system", "test:///default", "qemu+tls://h:16514/system"],
)
def test_uri_accepts_qemu_transports_and_the_test_driver(value: str) -> None:
    assert validation.uri("uri", value) == value


@pytest.mark.parametrize("value", ["http://x", "xen:///", "lxc:///system"])
def test_uri_rejects_other_schemes_listing_the_allowed_ones(value: str) -> None:
    reason = rejected(validation.uri, "uri", value).reason
    assert "unsupported URI scheme" in reason
    allowed = set(reason.split("use one of ", 1)[1].split(", "))
    assert {"qemu", "qemu+ssh", "test"} <= allowed
    assert allowed == validation.URI_SCHEMES


@pytest.mark.parametrize("value", ["foo", "", None, "qemu:/system"])
def test_uri_rejects_values_that_are_not_uris(value: object) -> None:
    assert "qemu:///system" in rejected(validation.uri, "uri", value).reason


def test_uri_with_a_malformed_host_is_an_input_error_not_a_crash() -> None:
    rejected(validation.uri, "uri", "qemu+ssh://[h/system")


# --- integers and ports ----------------------------------------------------------------------


def test_integer_accepts_values_within_bounds_and_whole_floats() -> None:
    assert validation.integer("vcpus", 4, minimum=1, maximum=8) == 4
    assert validation.integer("vcpus", 1, minimum=1, maximum=8) == 1
    assert validation.integer("vcpus", 8, minimum=1, maximum=8) == 8
    result = validation.integer("vcpus", 2.0, minimum=1)
    assert result == 2 and type(result) is int


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        (True, "not a boolean"),
        (False, "not a boolean"),
        (2.5, "whole number"),
        (0, "at least 1"),
        (9, "at most 8"),
        ("4", "must be an integer"),
        (None, "must be an integer"),
    ],
    ids=["true", "false", "fraction", "below-min", "above-max", "string", "none"],
)
def test_integer_rejections_name_the_field(value: object, complaint: str) -> None:
    err = rejected(validation.integer, "vcpus", value, minimum=1, maximum=8)
    assert complaint in err.reason


@pytest.mark.parametrize("value", [0, 22, 65535])
def test_port_accepts_zero_to_65535(value: int) -> None:
    assert validation.port("ssh_port", value) == value


@pytest.mark.parametrize("value", [-1, 65536, True, "22"])
def test_port_rejects_out_of_range_and_non_integers(value: object) -> None:
    rejected(validation.port, "ssh_port", value)


# --- sha256, booleans, argv ------------------------------------------------------------------


def test_sha256_is_normalised_to_lowercase() -> None:
    digest = "AB" * 32
    assert validation.sha256_hex("sha256", digest) == "ab" * 32


@pytest.mark.parametrize("value", ["a" * 63, "a" * 65, "g" * 64, "a" * 64 + "\n", None])
def test_sha256_rejects_anything_but_64_hex_digits(value: object) -> None:
    rejected(validation.sha256_hex, "sha256", value)


def test_boolean_accepts_only_real_booleans() -> None:
    assert validation.boolean("vsock", False) is False
    rejected(validation.boolean, "vsock", "yes")
    rejected(validation.boolean, "vsock", 1)


def test_argv_accepts_a_list_or_tuple_of_strings() -> None:
    assert validation.argv("setup", ("/usr/bin/setup-gpus", "--cc")) == [
        "/usr/bin/setup-gpus",
        "--cc",
    ]


def test_argv_rejects_a_shell_string() -> None:
    assert "never a shell" in rejected(validation.argv, "setup", "setup-gpus --cc; rm -rf /").reason


@pytest.mark.parametrize("value", [[], None, ["ok", 3]], ids=["empty", "none", "non-string"])
def test_argv_rejects_empty_and_non_string_elements(value: object) -> None:
    rejected(validation.argv, "setup", value)


# --- PCI addresses ---------------------------------------------------------------------------


def test_pci_address_without_domain_gets_domain_zero() -> None:
    address = validation.pci_address("gpus[0]", "3b:00.0")
    assert address == PciAddress(0, 0x3B, 0, 0)
    assert str(address) == "0000:3b:00.0"


def test_pci_address_uppercase_is_normalised() -> None:
    assert str(validation.pci_address("gpus[0]", "0000:AF:1F.7")) == "0000:af:1f.7"


def test_pci_address_with_domain() -> None:
    assert validation.pci_address("gpus[0]", "1002:00:01.3") == PciAddress(0x1002, 0, 1, 3)


def test_pci_slot_above_1f_is_rejected() -> None:
    assert "slot" in rejected(validation.pci_address, "gpus[0]", "0000:3b:20.0").reason


@pytest.mark.parametrize(
    "value",
    ["0000:3b:00.8", "3b:00", "3b.00.0", "zz:00.0", "00000:3b:00.0", "3b:00.0.0", "", "gpu0"],
    ids=["function-8", "no-function", "dots", "non-hex", "long-domain", "extra", "empty", "word"],
)
def test_pci_address_rejects_garbage(value: str) -> None:
    rejected(validation.pci_address, "gpus[0]", value)


def test_pci_address_rejects_non_strings() -> None:
    rejected(validation.pci_address, "gpus[0]", 0x3B00)


def test_pci_addresses_rejects_duplicates_naming_the_index() -> None:
    with pytest.raises(InputError) as excinfo:
        validation.pci_addresses("gpus", ["3b:00.0", "0000:3B:00.0"])
    assert excinfo.value.field == "gpus[1]"
    assert "0000:3b:00.0 is listed twice" in excinfo.value.reason


def test_pci_addresses_keeps_order_and_accepts_none() -> None:
    assert validation.pci_addresses("gpus", None) == []
    assert validation.pci_addresses("gpus", ["86:00.0", "3b:00.0"]) == [
        PciAddress(0, 0x86, 0, 0),
        PciAddress(0, 0x3B, 0, 0),
    ]


def test_pci_addresses_rejects_a_single_string() -> None:
    rejected(validation.pci_addresses, "gpus", "3b:00.0")


def test_pci_addresses_names_the_bad_element() -> None:
    with pytest.raises(InputError) as excinfo:
        validation.pci_addresses("gpus", ["3b:00.0", "86:00.0", "nope"])
    assert excinfo.value.field == "gpus[2]"


def test_nodedev_name_is_libvirts_pci_device_name() -> None:
    assert PciAddress(0, 0x3B, 0, 0).nodedev_name == "pci_0000_3b_00_0"
    assert PciAddress(0x1002, 0xAF, 0x1F, 7).nodedev_name == "pci_1002_af_1f_7"


pci_addresses = st.builds(
    PciAddress,
    domain=st.integers(0, 0xFFFF),
    bus=st.integers(0, 0xFF),
    slot=st.integers(0, 0x1F),
    function=st.integers(0, 7),
)


@given(pci_addresses)
def test_pci_address_string_form_round_trips(address: PciAddress) -> None:
    text = str(address)
    assert CANONICAL_BDF.match(text)
    assert validation.pci_address("gpus[0]", text) == address
    assert validation.pci_address("gpus[0]", text.upper()) == address
    if address.domain == 0:
        assert validation.pci_address("gpus[0]", text.removeprefix("0000:")) == address


@given(st.text())
@example("3b:00.0\n")
@example("0000:3b:20.0")
@example("\u0663b:00.0")
def test_pci_address_of_arbitrary_text_is_canonical_or_an_input_error(value: str) -> None:
    try:
        address = validation.pci_address("gpus[0]", value)
    except InputError as exc:
        assert exc.field == "gpus[0]"
        return
    assert CANONICAL_BDF.match(str(address))


@given(
    st.from_regex(r"(?:[0-9a-fA-F]{1,4}:)?[0-9a-fA-F]{1,2}:[0-9a-fA-F]{1,2}\.[0-9]", fullmatch=True)
)
def test_pci_address_of_bdf_shaped_text_is_canonical_or_an_input_error(value: str) -> None:
    try:
        address = validation.pci_address("gpus[0]", value)
    except InputError:
        return
    assert CANONICAL_BDF.match(str(address))
