"""Rules for trust-domain stacks, one module per concern; :mod:`.pack` lists them."""
