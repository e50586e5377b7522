"""pulumi-tdx: declare Intel TDX trust domains on libvirt with Pulumi.

    pool = Pool("pool", name="tdx", path="/var/lib/pulumi-tdx/pool")
    base = BaseImage("base", pool=pool, source="/srv/images/ubuntu-24.04-td.qcow2")
    disk = Overlay("disk", pool=pool, base_image=base)
    seed = CloudInitSeed("seed", pool=pool, hostname="td-1",
                         users=[SeedUser("ops", ssh_authorized_keys=[public_key], sudo=True)])
    td = TrustDomain("td", overlay=disk, seed=seed, memory_mib=4096, vcpus=4,
                     firmware="/usr/share/ovmf/OVMF.fd")
"""

from .base_image import BaseImage, BaseImageArgs
from .cloud_init_seed import CloudInitSeed, CloudInitSeedArgs, SeedUser
from .overlay import Overlay, OverlayArgs
from .pool import Pool, PoolArgs
from .trust_domain import QuoteGenerationService, TrustDomain, TrustDomainArgs

__all__ = [
    "BaseImage",
    "BaseImageArgs",
    "CloudInitSeed",
    "CloudInitSeedArgs",
    "Overlay",
    "OverlayArgs",
    "Pool",
    "PoolArgs",
    "QuoteGenerationService",
    "SeedUser",
    "TrustDomain",
    "TrustDomainArgs",
]
