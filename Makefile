# JoyNet. `make demo` runs the main job, `make test` the whole suite; both set up first.
SHELL := /bin/bash
APE := .venv/bin/ape

.PHONY: help setup test test-long demo bench deploy clean

help:
	@echo "make setup   install the toolchain into .venv and node_modules (idempotent, offline registries only)"
	@echo "make test    run the whole test suite on a private anvil chain"
	@echo "make test-long  the protocol state machine with 10,000 steps"
	@echo "make demo    local chain + protocol + one governance change through the timelock"
	@echo "make bench   gas per protocol step from real transactions (writes bench/results.json)"
	@echo "make deploy  deploy to the local chain at JOYNET_LOCAL_CHAIN_HOST (ape run deploy)"
	@echo "make clean   remove everything make setup and the builds created"

setup:
	@bash toolchain/setup.sh

test: setup
	$(APE) test tests -q

# The protocol state machine at length: 500 examples of 20 steps (10,000 steps; several minutes).
test-long: setup
	JOYNET_STATEFUL_EXAMPLES=500 JOYNET_STATEFUL_STEPS=20 $(APE) test tests/test_protocol_invariants.py -q

demo: setup
	$(APE) run demo

bench: setup
	$(APE) run bench

deploy: setup
	$(APE) run deploy

clean:
	rm -rf .venv node_modules .build contracts/.cache toolchain/.solc-version-cache
