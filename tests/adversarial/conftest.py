"""Fixtures of the adversarial suite: attacks as an attacker runs them, each against the rule
that now holds. tests/conftest.py (the deployment, named accounts, register/request helpers)
applies here as to every test below tests/."""

import sys
from pathlib import Path

import pytest

# The suite's helper modules (chain_asserts, ...) live in tests/. pytest puts that folder on
# sys.path when it loads tests/conftest.py; this keeps the imports working however the folder is
# collected (a single file, another import mode).
_TESTS = str(Path(__file__).resolve().parent.parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)


@pytest.fixture
def by_address(operators):
    """The node operators by address (assignments name nodes by address)."""
    return {operator.address: operator for operator in operators}


@pytest.fixture
def as_timelock(timelock, accounts, deployer):
    """The timelock, impersonated: it owns every component, so this is what an executed proposal
    sends (tests/test_governance.py carries real proposals through the DAO)."""
    governor = accounts[timelock.address]
    deployer.transfer(governor, "1 ether")
    return governor


@pytest.fixture
def fresh_account(accounts):
    """A new funded account per call. Contracts deployed in a test are reverted with it, and Ape
    remembers the contract type at an address: a deployer that never deployed before never
    reuses an address another test's deployment had."""

    def make():
        account = accounts.generate_test_account()
        accounts[0].transfer(account, "10 ether")
        return account

    return make
