"""The disks a domain definition names (tdx_provider.disk_users.disks_of)."""

from __future__ import annotations

from tdx_provider.disk_users import DomainDisks, disks_of

XML = """<domain><name>d</name><devices>
  <disk type='file' device='disk'><source file='/pool//a.qcow2'/><target dev='vda'/></disk>
  <disk type='file' device='cdrom'><source file='/isos/../isos/seed.iso'/></disk>
  <disk type='volume' device='disk'><source pool='tdx' volume='b.qcow2'/></disk>
  <disk type='network' device='disk'><source protocol='nbd' name='x'/></disk>
  <disk type='file' device='cdrom'><target dev='sda'/></disk>
</devices></domain>"""


def test_file_and_volume_sources_are_named_and_others_ignored() -> None:
    files, volumes = disks_of(XML)
    assert files == frozenset({"/pool/a.qcow2", "/isos/seed.iso"})
    assert volumes == frozenset({("tdx", "b.qcow2")})


def test_uses_compares_normalised_paths_and_pool_volume_names() -> None:
    domain = DomainDisks("u", "d", *disks_of(XML))
    assert domain.uses("/pool/./a.qcow2")
    assert not domain.uses("/pool/b.qcow2")
    assert domain.uses("/var/lib/tdx/b.qcow2", ("tdx", "b.qcow2"))
    assert not domain.uses("/var/lib/other/b.qcow2", ("other", "b.qcow2"))
