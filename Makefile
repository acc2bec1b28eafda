# JoyNet. `make demo` runs the main job, `make test` the whole suite; both set up first.
SHELL := /bin/bash
APE := .venv/bin/ape

.PHONY: help setup test test-long lint demo bench load deploy circuits slither docs explorer-screenshots clean

help:
	@echo "make setup   install the toolchain into .venv and node_modules (idempotent, offline registries only)"
	@echo "make test    run the whole test suite on a private anvil chain"
	@echo "make test-long  the protocol state machine, at least 10,000 steps"
	@echo "make lint    the code checks: import layering (lint-imports), ruff check and format, mypy joynet"
	@echo "make demo    JoyNet end to end on a local chain: models, edge agents, bridgers, voter, requests, governance"
	@echo "make bench   gas per protocol step from real transactions (writes bench/results.json)"
	@echo "make load    1,000 paid requests against three edge agents on 2-second blocks, then the mixed load, a fault run and a crash run (writes bench/load.json)"
	@echo "make circuits  rebuild the digits MLP circuit, its local trusted setup and DigitsMLPVerifier.sol"
	@echo "make deploy  deploy to the local chain at JOYNET_LOCAL_CHAIN_HOST (ape run deploy)"
	@echo "make slither  Slither static analysis of contracts/ (SLITHER_FAIL=medium fails on Medium or High findings)"
	@echo "make docs    build the documentation site into site/ (mkdocs --strict; open site/index.html)"
	@echo "make explorer-screenshots  refresh docs/images/explorer-*.png from the explorer's browser test"
	@echo "make clean   remove everything make setup and the builds created"

setup:
	@bash toolchain/setup.sh

test: setup
	$(APE) test tests -q

# The protocol state machine at length: 800 examples of up to 20 steps, failing below 10,000 steps
# (Hypothesis ends some examples early); about 10 minutes on 2 cores.
test-long: setup
	JOYNET_STATEFUL_EXAMPLES=800 JOYNET_STATEFUL_STEPS=20 JOYNET_STATEFUL_MIN_STEPS=10000 $(APE) test tests/invariants/test_protocol_invariants.py -q

# The code checks tests/unit/test_code_checks.py runs in the suite; configured in pyproject.toml. All
# three run, and the target fails if any of them failed.
lint: setup
	@status=0; \
	.venv/bin/lint-imports || status=1; \
	.venv/bin/ruff check joynet agents bench scripts || status=1; \
	.venv/bin/ruff format --check joynet agents bench scripts || status=1; \
	.venv/bin/mypy joynet || status=1; \
	exit $$status

demo: setup
	$(APE) run demo

bench: setup
	$(APE) run bench

# anvil without --steps-tracing: it would keep a per-opcode trace of each of the load's thousands of
# transactions in memory (past 20 GB).
load: setup
	JOYNET_ANVIL_STEPS_TRACING=0 $(APE) run load

deploy: setup
	$(APE) run deploy

# Compile, local powers of tau (cached in circuits/ptau/), Groth16 setup, keys and verifier.
# Minutes; tests and the demo use the committed artefacts and never run it.
circuits: setup
	PYTHON=.venv/bin/python bash circuits/build.sh

# Slither over contracts/, OpenZeppelin left out; its own virtualenv .venv-slither is made on first
# use (about 30 s). A run takes about 30 s of CPU on one core. It exits 0 whatever it finds unless
# SLITHER_FAIL is low, medium or high (fail on findings of that impact or above) or pedantic (any).
SLITHER_FAIL ?= none
slither: setup
	bash toolchain/slither.sh --fail-$(SLITHER_FAIL) $(SLITHER_ARGS)

# The documentation site (mkdocs.yml, docs/): any warning, broken link or anchor fails the build.
docs: setup
	NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --site-dir site

# The explorer's screenshots in the docs: its browser test, writing them to docs/images.
explorer-screenshots: setup
	JOYNET_EXPLORER_SCREENSHOTS=$(CURDIR)/docs/images $(APE) test tests/e2e/test_explorer.py -q -k network

clean:
	rm -rf .venv .venv-slither node_modules .build contracts/.cache toolchain/.solc-version-cache site
