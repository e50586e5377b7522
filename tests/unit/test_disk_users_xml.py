"""The disks a domain definition names (tdx_provider.storage.domain_disks.disks_of)."""

from __future__ import annotations

from tdx_provider.storage.domain_disks import DomainDisks, disks_of

XML = """<domain><name>d</name><devices>
  <disk type='file' device='disk'><source file='/pool//a.qcow2'/><target dev='vda'/></disk>
  <disk type='file' device='cdrom'><source file='/isos/../isos/seed.iso'/></disk>
  <disk type='volume' device='disk'><source pool='tdx' volume='b.qcow2'/></disk>
  <disk type='block' device='disk'><source dev='/dev/vg/lv'/></disk>
  <disk type='network' device='disk'><source protocol='nbd' name='x'/></disk>
  <disk type='file' device='cdrom'><target dev='sda'/></disk>
</devices></domain>"""

# A running domain's live XML: libvirt resolves each disk's backing chain into nested
# <backingStore> elements, and a block copy names its target in <mirror>.
LIVE = """<domain id='7'><name>d</name><devices>
  <disk type='file' device='disk'>
    <source file='/tmp/by-hand.qcow2' index='3'/>
    <backingStore type='file' index='4'><format type='qcow2'/>
      <source file='/pool/mid.qcow2'/>
      <backingStore type='volume' index='5'><source pool='tdx' volume='base'/>
        <backingStore/></backingStore>
    </backingStore>
    <mirror type='file' job='copy'><format type='qcow2'/><source file='/pool/copy.qcow2'/>
    </mirror>
    <target dev='vdb'/>
  </disk>
</devices></domain>"""


def test_file_device_and_volume_sources_are_named_and_others_ignored() -> None:
    found = disks_of(XML)
    assert found.disks == frozenset({"/pool/a.qcow2", "/isos/seed.iso", "/dev/vg/lv"})
    assert found.volumes == frozenset({("tdx", "b.qcow2")})
    assert found.layers == frozenset() and found.layer_volumes == frozenset()


def test_backing_chains_and_copy_targets_are_layers_at_any_depth() -> None:
    found = disks_of(LIVE)
    assert found.disks == frozenset({"/tmp/by-hand.qcow2"})
    assert found.layers == frozenset({"/pool/mid.qcow2", "/pool/copy.qcow2"})
    assert found.layer_volumes == frozenset({("tdx", "base")})


def test_uses_compares_normalised_paths_and_pool_volume_names() -> None:
    domain = DomainDisks("u", "d", *disks_of(XML))
    assert domain.uses("/pool/./a.qcow2")
    assert not domain.uses("/pool/b.qcow2")
    assert domain.uses("/var/lib/tdx/b.qcow2", ("tdx", "b.qcow2"))
    assert not domain.uses("/var/lib/other/b.qcow2", ("other", "b.qcow2"))


def test_a_layer_is_used_but_not_named() -> None:
    """``uses``: any disk reads it; ``names``: it is a disk's own source (what blockResize and
    pool-info's USED BY take)."""
    domain = DomainDisks("u", "d", *(disks_of(XML) | disks_of(LIVE)))
    for path, volume in (("/pool/mid.qcow2", None), ("/x/base", ("tdx", "base"))):
        assert domain.uses(path, volume) and not domain.names(path, volume)
    assert domain.uses("/tmp/by-hand.qcow2") and domain.names("/tmp/by-hand.qcow2")
    assert domain.names("/pool/a.qcow2"), "the union keeps the persistent definition's disks"
