"""pulumi-tdx engine: libvirt-python code for pools, volumes, trust domains, GPUs and host checks.

The engine knows libvirt and nothing of Pulumi; :mod:`tdx_provider.dynamic` holds the thin
Pulumi adapters, and ``tdxctl`` (:mod:`tdx_provider.tdxctl`) reuses the same modules.
"""

__version__ = "0.1.0"
