"""``make soak``: many minutes of stacks, an operator and faults on one pool, then one table.

One pool on a libvirt daemon the soak owns (a private daemon, so that restarting it disturbs
nobody), and at once:

- :mod:`.stacks`: two or more Pulumi stacks (real CLI, local file backend) cycling up, change,
  refresh and destroy;
- :mod:`.operator_loop`: an operator running ``tdxctl list``, ``pool-info``, ``pool-cleanup`` and
  ``delete`` of a stack it was handed;
- :mod:`.faults`: at seeded random moments, the daemon restarted, a ``pulumi up`` interrupted
  (SIGINT), a dynamic provider SIGKILLed, a pool lock holder SIGKILLed;
- :mod:`.markers`: every declared overlay carries a token the soak wrote into it, checked again
  and again: a volume a stack still declares that is gone or carries another token is *lost*.

:mod:`.readiness` prints the figures; the exit status is not 0 when anything was lost, anything
failed for a reason other than an injected fault, or anything is left after the final destroy.
"""
