"""Default values that more than one layer names: written here once. The specs declare them as
the inputs' defaults; the template variables and the Python SDK's signatures refer to them."""

from __future__ import annotations

URI = "qemu:///system"
SHUTDOWN_TIMEOUT = 60  # seconds delete waits for an ACPI shutdown before forcing off
NETWORK = "default"  # the libvirt network of a TrustDomain's second NIC (the SDKs' default)
SSH_BIND_ADDRESS = "127.0.0.1"
DMA_ENTRY_LIMIT = 0x200000  # vfio_iommu_type1 dma_entry_limit for GPU passthrough
