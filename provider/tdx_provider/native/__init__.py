"""The native ``tdx`` Pulumi provider plugin (issue 20): a gRPC provider server over the engine.

PLACEHOLDER (infra branch): only here so that the ``pulumi-resource-tdx`` console script in
pyproject.toml has a target and ``make setup`` puts it on the venv's PATH. The lead's provider
replaces this package.
"""
