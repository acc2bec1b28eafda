"""What the attacks of the adversarial suite share: JOY sums, the protocol constants they are
measured against, the moves (request, commit, reveal, blocks of several transactions) an
attacker makes, and a few fixtures, which an attack module imports by name (tests/contracts/attacks
has no conftest.py of its own: tests/conftest.py applies there as everywhere below tests/)."""

import pytest
from eth_utils import keccak

from joynet.chain.constants import ZERO32, ZERO_ADDRESS  # noqa: F401 - re-exported for the attack tests
from joynet.chain.deploy import JOY
from joynet.chain.marketplace import Request, model_key, seal_result

TASK_BOND = 10 * JOY  # deploy-config local: nodes.task_bond
NODE_SHARE_BPS, OWNER_SHARE_BPS, PROTOCOL_SHARE_BPS = 7_000, 2_000, 1_000  # local fee shares
BPS = 10_000
OPEN, SETTLED, REFUNDED = 1, 2, 3


def output(text: str) -> bytes:
    """An output commitment."""
    return keccak(text=text)


def salt_for(request, node) -> bytes:
    return model_key(f"salt:{request.id}:{node}")


def commit(marketplace, request, node, out, salt=None):
    """``node`` (an account) commits to ``out`` for ``request``; returns the salt it sealed with."""
    salt = salt or salt_for(request, node.address)
    marketplace.commitResult(request, seal_result(request.id, node.address, out, salt), sender=node)
    return salt


def reveal(marketplace, request, node, out, salt=None, uri="ipfs://bafyoutput"):
    salt = salt or salt_for(request, node.address)
    return marketplace.revealResult(request, out, salt, uri, b"", sender=node)


def past_reveal_window(marketplace, chain, request):
    """Moves the chain past the request's deadline and the reveal window after it."""
    chain.pending_timestamp = max(chain.pending_timestamp, request.deadline + marketplace.revealWindow() + 1)


def past_deadline(chain, request, seconds=1):
    chain.pending_timestamp = max(chain.pending_timestamp, request.deadline + seconds)


def joy_held(token, marketplace, coordinator, *accounts) -> int:
    """All the JOY an attacker controls through ``accounts``: wallets, marketplace balances
    (fees credited, deposits) and node stakes (bonded or not, and unbonding)."""
    total = 0
    for account in accounts:
        address = getattr(account, "address", account)
        total += token.balanceOf(address) + marketplace.balances(address)
        total += coordinator.nodeInfo(address).stake + coordinator.unbondingOf(address)[0]
    return total


def request_event(marketplace, receipt) -> Request:
    (event,) = receipt.decode_logs(marketplace.InferenceRequested)
    return Request.from_event(event)


def in_one_block(chain, calls):
    """Mines ``calls`` — (account, contract method, args) — in one block, in this order: automine
    off, the signed transactions into anvil's pool (each with a gas limit, since an estimate would
    run it against a state without the others, and a falling priority fee so that anvil keeps the
    order), one block, automine on. Returns their receipts (a reverted one is mined, not raised)."""
    provider = chain.provider
    nonces, hashes = {}, []
    provider.auto_mine = False
    try:
        for position, (account, method, args) in enumerate(calls):
            nonce = nonces.setdefault(account.address, account.nonce)
            nonces[account.address] += 1
            tip = (len(calls) - position) * 10**9
            txn = method.as_transaction(
                *args, sender=account, nonce=nonce, gas_limit=1_000_000,
                max_priority_fee=tip, max_fee=100 * 10**9,
            )
            signed = account.sign_transaction(txn)
            hashes.append(provider.web3.eth.send_raw_transaction(signed.serialize_transaction()))
        chain.mine()
    finally:
        provider.auto_mine = True
    receipts = [provider.get_receipt(h.to_0x_hex() if hasattr(h, "to_0x_hex") else h.hex()) for h in hashes]
    assert len({r.block_number for r in receipts}) == 1, "the calls did not land in one block"
    return receipts


def revert_name(receipt) -> str:
    """The custom error a transaction mined by ``in_one_block`` reverted with (it was mined, not
    sent through Ape, so ``reverts_with`` cannot catch it: Ape decodes it from the trace)."""
    assert receipt.failed, "the transaction did not revert"
    return receipt.trace.revert_message.split("(", 1)[0]


# ---- fixtures (imported by the test modules that use them) ----


@pytest.fixture
def by_address(operators):
    """The node operators by address (assignments name nodes by address)."""
    return {operator.address: operator for operator in operators}


@pytest.fixture
def as_timelock(timelock, accounts, deployer):
    """The timelock, impersonated: it owns every component, so this is what an executed proposal
    sends (tests/contracts/test_governance.py carries real proposals through the DAO)."""
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
