"""Storage: pools, volumes, images, the pool ledger and its lock, disk users."""
