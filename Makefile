# pulumi-tdx: the two commands README.md documents are `make demo` and `make test`.
SHELL := /bin/bash
PY := .venv/bin/python
# Where `make dist` writes the wheel.
DIST ?= dist

.PHONY: setup demo demo-destroy test test-unit test-libvirt test-e2e lint bench soak dist docs sdks

setup:
	bash scripts/setup.sh

demo: setup
	bash scripts/demo.sh

demo-destroy:
	bash scripts/demo-destroy.sh

test: setup
	source scripts/env.sh && $(PY) -m pytest -q tests/unit tests/libvirt tests/e2e

test-unit:
	$(PY) -m pytest -q tests/unit

test-libvirt:
	source scripts/env.sh && $(PY) -m pytest -q tests/libvirt

test-e2e:
	source scripts/env.sh && $(PY) -m pytest -q tests/e2e

# docs/resources.md and the schema the native plugin serves, from the specs (after a spec change).
docs:
	$(PY) -m tdx_provider.native.docs
	$(PY) scripts/sync_sdk_docs.py

# sdk/go/tdx and sdk/nodejs from that schema, by Pulumi's code generators (after `make docs`).
sdks:
	bash scripts/gen-sdks.sh

lint:
	.venv/bin/ruff check provider sdk tests examples bench policy scripts
	.venv/bin/mypy --ignore-missing-imports provider/tdx_provider sdk/python/pulumi_tdx bench/soak
	cd policy && ../.venv/bin/mypy --ignore-missing-imports tdx_policy

bench: setup
	source scripts/env.sh && $(PY) bench/run.py

# Stacks, an operator and faults on one pool for SOAK_MINUTES (default 20), then the figures
# (docs/reliability.md). SOAK_HOST=debian|upstream, or SOAK_URI; SOAK_SEED repeats a schedule.
SOAK_MINUTES ?= 20
soak: setup
	source scripts/env.sh && $(PY) -m bench.soak --minutes $(SOAK_MINUTES) \
	  $(if $(SOAK_HOST),--host $(SOAK_HOST)) $(if $(SOAK_URI),--uri '$(SOAK_URI)') \
	  $(if $(SOAK_SEED),--seed $(SOAK_SEED))

# The wheel of pulumi-tdx (SDK + provider) for a user's own project: pip install dist/*.whl
dist:
	$(PY) -m pip wheel --quiet --no-deps --wheel-dir $(DIST) .
	@ls $(DIST)/pulumi_tdx-*.whl
