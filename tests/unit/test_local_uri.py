"""Which URIs name this machine's own libvirtd: only for those are input files checked here."""

from __future__ import annotations

import pytest

from tdx_provider.connection import is_local_uri


@pytest.mark.parametrize(
    "uri",
    [
        "qemu:///system",
        "qemu:///session",
        "qemu:///system?socket=/run/libvirt/libvirt-sock",
        "qemu:///system?socket=/var/run/libvirt/libvirt-sock",
        "qemu:///system?socket=/run/libvirt/../libvirt/libvirt-sock",
        "test:///default",
        "test:///work/tests/fixtures/testhost.xml",
    ],
)
def test_uris_of_this_machines_daemon_are_local(uri: str) -> None:
    assert is_local_uri(uri)


@pytest.mark.parametrize(
    "uri",
    [
        # another daemon on this machine, with its own root (the upstream sid host)
        "qemu:///system?socket=/root/.cache/pulumi-tdx/upstream-sid/run/libvirt/libvirt-sock",
        "qemu:///system?socket=/srv/root/run/libvirt/libvirt-sock",
        "qemu:///system?socket=/run/libvirt/libvirt-sock&socket=/srv/other-sock",
        # any transport, with or without a host
        "qemu+unix:///system",
        "qemu+unix:///system?socket=/tmp/private/libvirt-sock",
        "qemu+ssh:///system",
        "qemu+ssh://root@tdx-host/system",
        "qemu+tcp://10.0.0.5/system",
        "qemu+tls://tdx-host:16514/system",
        "qemu+libssh2://tdx-host/system",
        "qemu+ext:///system?command=/opt/tunnel",
        # any host name
        "qemu://tdx-host.example/system",
        "qemu://localhost/system",
        # not parseable: never assume local
        "qemu://[bad/system",
    ],
)
def test_other_daemons_and_hosts_are_remote(uri: str) -> None:
    assert not is_local_uri(uri)


def test_each_test_host_has_a_unix_transport_uri_that_counts_as_remote() -> None:
    from tests.support.hosts import hosts

    for host in hosts():
        assert not is_local_uri(host.unix_uri)
        assert host.unix_uri.endswith(f"?socket={host.socket}")
    assert hosts()[0].socket == "/var/run/libvirt/libvirt-sock"
