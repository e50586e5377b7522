"""pulumi-tdx: declare Intel TDX trust domains on libvirt with Pulumi.

    pool = Pool("pool", name="tdx", path="/var/lib/pulumi-tdx/pool")
    base = BaseImage("base", pool=pool, source="/srv/images/ubuntu-24.04-td.qcow2")
    disk = Overlay("disk", pool=pool, base_image=base)
    td = TrustDomain("td", overlay=disk, memory_mib=4096, vcpus=4,
                     firmware="/usr/share/ovmf/OVMF.fd")
"""

from .base_image import BaseImage, BaseImageArgs
from .overlay import Overlay, OverlayArgs
from .pool import Pool, PoolArgs
from .trust_domain import QuoteGenerationService, TrustDomain, TrustDomainArgs

__all__ = [
    "BaseImage",
    "BaseImageArgs",
    "Overlay",
    "OverlayArgs",
    "Pool",
    "PoolArgs",
    "QuoteGenerationService",
    "TrustDomain",
    "TrustDomainArgs",
]
