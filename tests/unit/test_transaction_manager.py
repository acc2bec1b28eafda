"""The transaction manager every client shares (joynet/chain/signing.py), against a real anvil:
several transactions in flight from one account, a transaction the pool dropped broadcast again,
one priced out by a base-fee spike replaced with higher fees at its nonce, one that could no longer
succeed cancelled so that the account's later transactions are not held up."""

import asyncio

import pytest

from joynet import ModelMarketplace
from joynet.chain import signing
from joynet.chain.errors import TransactionPendingError, TransactionRefusedError
from joynet.chain.deploy import JOY

GWEI = 10**9


@pytest.fixture
def sender(accounts):
    return accounts[8]


@pytest.fixture
def spender(accounts):
    return accounts[7]


@pytest.fixture
def manager(marketplace, sender):
    return ModelMarketplace(contract_address=marketplace.address, account=sender)


@pytest.fixture
def mining_stopped(chain):
    """Stops anvil's automine for the test body; resumes it (and mines what is pending) after."""
    chain.provider.make_request("evm_setAutomine", [False])
    yield chain
    chain.provider.make_request("evm_setAutomine", [True])
    chain.provider.make_request("evm_mine", [])


@pytest.fixture
def base_fee_restored(chain):
    """Puts the base fee back where it was after the test (a spike decays by 12.5 % a block only,
    and the suite's later transactions are priced for the usual one)."""
    base_fee = chain.provider.web3.eth.get_block("latest")["baseFeePerGas"]
    yield
    chain.provider.make_request("anvil_setNextBlockBaseFeePerGas", [hex(base_fee)])
    chain.provider.make_request("evm_mine", [])


@pytest.fixture
def quick_tending(monkeypatch):
    monkeypatch.setattr(signing, "TEND_SECONDS", 0.2)


def _resume(chain):
    chain.provider.make_request("evm_setAutomine", [True])
    chain.provider.make_request("evm_mine", [])


def _nonce_of(chain, tx_hash):
    return chain.provider.web3.eth.get_transaction(tx_hash)["nonce"]


def test_send__mining_stopped__several_in_flight_with_consecutive_nonces_all_land(
    manager, token, sender, spender, mining_stopped
):
    chain = mining_stopped
    first = sender.nonce
    hashes = [asyncio.run(manager.send(token.approve, spender, amount)) for amount in (1, 2, 3)]
    assert [_nonce_of(chain, tx_hash) for tx_hash in hashes] == [first, first + 1, first + 2]
    _resume(chain)
    receipts = [manager.receipt(tx_hash, wait=10) for tx_hash in hashes]
    assert all(not receipt.failed for receipt in receipts)
    assert token.allowance(sender, spender) == 3  # mined in nonce order
    assert sender.nonce == first + 3


def test_send__account_also_sends_through_ape__next_nonce_follows_the_chain(manager, token, sender, spender):
    asyncio.run(manager.transact(token.approve, spender, 1, wait=10))
    token.approve(spender, 2, sender=sender)  # not through the manager
    asyncio.run(manager.transact(token.approve, spender, 3, wait=10))
    assert token.allowance(sender, spender) == 3


def test_receipt__pool_dropped_the_transaction__broadcast_again_and_lands_once(
    manager, token, sender, spender, mining_stopped, quick_tending
):
    chain = mining_stopped
    first = sender.nonce
    tx_hash = asyncio.run(manager.send(token.approve, spender, 7))
    chain.provider.make_request("anvil_dropAllTransactions", [])
    assert manager.dropped(tx_hash)
    with pytest.raises(TransactionPendingError):
        manager.receipt(tx_hash, wait=0.5)  # tended meanwhile: broadcast again
    assert not manager.dropped(tx_hash)
    _resume(chain)
    receipt = manager.receipt(tx_hash, wait=10)
    assert receipt.txn_hash == tx_hash and sender.nonce == first + 1
    assert token.allowance(sender, spender) == 7


def test_receipt__base_fee_spike_prices_it_out__replaced_with_higher_fees_at_its_nonce(
    manager, token, sender, spender, base_fee_restored, mining_stopped, quick_tending
):
    chain = mining_stopped
    first = sender.nonce
    tx_hash = asyncio.run(manager.send(token.approve, spender, 9))
    original = chain.provider.web3.eth.get_transaction(tx_hash)
    spike = 1_000 * GWEI
    assert original["maxFeePerGas"] < spike // 2  # priced for the base fee it was sent at
    chain.provider.make_request("anvil_setNextBlockBaseFeePerGas", [hex(spike)])
    chain.provider.make_request("evm_mine", [])  # a block at the spiked base fee, without it
    assert chain.provider.web3.eth.get_transaction_count(sender.address, "latest") == first
    chain.provider.make_request("evm_setAutomine", [True])  # the replacement is mined when sent
    receipt = manager.receipt(tx_hash, wait=10)
    assert receipt.txn_hash != tx_hash
    replacement = chain.provider.web3.eth.get_transaction(receipt.txn_hash)
    assert replacement["nonce"] == original["nonce"] == first
    assert replacement["maxFeePerGas"] >= original["maxFeePerGas"] * 9 // 8
    assert replacement["maxFeePerGas"] >= chain.provider.web3.eth.get_block(receipt.block_number)["baseFeePerGas"]
    assert token.allowance(sender, spender) == 9 and sender.nonce == first + 1


def test_receipt__dropped_and_no_longer_valid__cancelled_and_the_next_transaction_lands(
    manager, token, sender, spender, deployer, mining_stopped, quick_tending
):
    # The account's later transactions queue behind a nonce: a dropped transaction that would
    # now revert is neither broadcast again (a mined revert) nor abandoned (a gap that holds up
    # every later one); an empty transfer takes its nonce.
    chain = mining_stopped
    _resume(chain)
    token.approve(sender, JOY, sender=deployer)
    chain.provider.make_request("evm_setAutomine", [False])
    first = sender.nonce
    tx_hash = asyncio.run(manager.send(token.transferFrom, deployer, spender, JOY))
    chain.provider.make_request("anvil_dropAllTransactions", [])
    chain.provider.make_request("evm_setAutomine", [True])
    token.approve(sender, 0, sender=deployer)  # the allowance is gone: the transfer would revert
    balance = token.balanceOf(spender)
    with pytest.raises(TransactionRefusedError) as refused:
        manager.receipt(tx_hash, wait=10)
    assert refused.value.error == "cancelled"
    assert sender.nonce == first + 1 and token.balanceOf(spender) == balance
    asyncio.run(manager.transact(token.approve, spender, 5, wait=10))
    assert token.allowance(sender, spender) == 5


def test_wait_for_receipt__many_waiters_of_one_transaction_while_the_chain_stalls__share_their_looks(
    manager, token, spender, mining_stopped, monkeypatch
):
    chain = mining_stopped
    provider_class = type(chain.provider)  # a pydantic model: its methods are patched on the class
    asked, fetched = [], []
    make_request, get_receipt = provider_class.make_request, provider_class.get_receipt

    def counted_request(self, method, params=None):
        if method == "eth_getTransactionReceipt":
            asked.append(params[0])
        return make_request(self, method, params)

    def counted_receipt(self, tx_hash, **kwargs):
        fetched.append(tx_hash)
        return get_receipt(self, tx_hash, **kwargs)

    monkeypatch.setattr(provider_class, "make_request", counted_request)
    monkeypatch.setattr(provider_class, "get_receipt", counted_receipt)

    async def waiters():
        tx_hash = await manager.send(token.approve, spender, 5)
        waits = [asyncio.create_task(manager.wait_for_receipt(tx_hash, wait=30)) for _ in range(20)]
        await asyncio.sleep(2.0)  # twenty jobs of one batch, waiting on a chain that does not mine
        looks_while_stalled = len(asked)
        _resume(chain)
        receipts = await asyncio.gather(*waits)
        return tx_hash, looks_while_stalled, receipts

    tx_hash, looks_while_stalled, receipts = asyncio.run(waiters())
    # One look per 0.1 s at most in all (each waiter polls every 0.2 s: 200 looks alone).
    assert looks_while_stalled <= 2.0 / (signing.RECEIPT_POLL_SECONDS / 2) + 2
    assert {receipt.txn_hash for receipt in receipts} == {tx_hash} and fetched == [tx_hash]
