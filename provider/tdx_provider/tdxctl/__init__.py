"""``tdxctl``: the operator's command line over the engine."""
