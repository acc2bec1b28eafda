"""JoyToken: fixed genesis supply, ERC-20 transfers, EIP-2612 permit, ERC-5805 votes, no mint."""

import ape
from eth_utils import keccak

from helpers.chain_asserts import permit_signature, reverts_with
from joynet.chain.deploy import JOY


# ---- genesis supply ----


def test_supply__after_deploy__equals_configured_allocations(token, deploy_config, genesis_holders):
    configured = sum(
        a.amount * (len(genesis_holders) if a.to == "test_accounts" else 1) for a in deploy_config.allocations
    )
    assert token.totalSupply() == configured * JOY == 10**9 * JOY
    assert token.decimals() == 18
    assert (token.name(), token.symbol()) == ("JoyNet", "JOY")


def test_supply__treasury_share__is_held_by_the_timelock(token, timelock, genesis_holders, outsider):
    assert token.balanceOf(timelock) == 500_000_000 * JOY
    assert all(token.balanceOf(account) == 50_000_000 * JOY for account in genesis_holders)
    assert token.balanceOf(outsider) == 0


def test_deploy__genesis_events__name_every_recipient(project, deployer, alice, bob):
    receipt = deployer.deploy(project.JoyToken, "J", "J", [alice, bob], [1, 2]).creation_metadata.receipt
    events = [(log.recipient, log.amount) for log in receipt.events if log.event_name == "GenesisAllocated"]
    assert events == [(alice.address, 1), (bob.address, 2)]


def test_deploy__mismatched_allocation__reverts(project, doomed_deployer, alice):
    with reverts_with("JoyTokenAllocationLengthMismatch", abi=project.JoyToken):
        doomed_deployer.deploy(project.JoyToken, "J", "J", [alice, alice], [1])


def test_deploy__empty_allocation__reverts(project, doomed_deployer):
    with reverts_with("JoyTokenEmptyAllocation", abi=project.JoyToken):
        doomed_deployer.deploy(project.JoyToken, "J", "J", [], [])


def test_deploy__zero_allocation__reverts(project, doomed_deployer, alice):
    with reverts_with("JoyTokenZeroAllocation", abi=project.JoyToken):
        doomed_deployer.deploy(project.JoyToken, "J", "J", [alice], [0])


# ---- no owner, no mint ----


def test_mint__after_deploy__has_no_entry_point(token, deployer, alice):
    abi_names = {item.name for item in token.contract_type.abi if getattr(item, "name", None)}
    assert not abi_names & {"mint", "owner", "transferOwnership", "grantRole"}
    supply = token.totalSupply()
    amount = (10**24).to_bytes(32, "big")
    for signature in ("mint(address,uint256)", "mint(uint256)", "issue(address,uint256)"):
        data = keccak(text=signature)[:4] + bytes(12) + bytes.fromhex(alice.address[2:]) + amount
        with ape.reverts():
            deployer.transfer(token, 0, data=data, gas_limit=200_000)
    assert token.totalSupply() == supply


# ---- transfers ----


def test_transfer__within_balance__moves_tokens(token, alice, bob):
    before = token.balanceOf(alice), token.balanceOf(bob)
    receipt = token.transfer(bob, 1_000 * JOY, sender=alice)
    assert token.balanceOf(alice) == before[0] - 1_000 * JOY
    assert token.balanceOf(bob) == before[1] + 1_000 * JOY
    assert receipt.events == [token.Transfer(alice, bob, 1_000 * JOY)]


def test_transfer__over_balance__reverts(token, outsider, alice):
    with reverts_with("ERC20InsufficientBalance"):
        token.transfer(alice, 1, sender=outsider)


def test_transfer_from__without_allowance__reverts(token, alice, bob, outsider):
    with reverts_with("ERC20InsufficientAllowance"):
        token.transferFrom(alice, outsider, 1, sender=bob)


# ---- permit (EIP-2612) ----


def test_permit__valid_signature__sets_allowance_without_gas_from_owner(token, alice, outsider, bob, chain):
    deadline = chain.pending_timestamp + 3600
    v, r, s = permit_signature(token, alice, bob, 5 * JOY, deadline)
    token.permit(alice, bob, 5 * JOY, deadline, v, r, s, sender=outsider)
    assert token.allowance(alice, bob) == 5 * JOY
    assert token.nonces(alice) == 1
    token.transferFrom(alice, bob, 5 * JOY, sender=bob)
    assert token.allowance(alice, bob) == 0


def test_permit__replayed_signature__reverts(token, alice, bob, chain):
    deadline = chain.pending_timestamp + 3600
    v, r, s = permit_signature(token, alice, bob, JOY, deadline)
    token.permit(alice, bob, JOY, deadline, v, r, s, sender=bob)
    with reverts_with("ERC2612InvalidSigner"):
        token.permit(alice, bob, JOY, deadline, v, r, s, sender=bob)


def test_permit__expired_deadline__reverts(token, alice, bob, chain):
    deadline = chain.pending_timestamp - 1
    v, r, s = permit_signature(token, alice, bob, JOY, deadline)
    with reverts_with("ERC2612ExpiredSignature"):
        token.permit(alice, bob, JOY, deadline, v, r, s, sender=bob)


def test_permit__signed_by_someone_else__reverts(token, alice, bob, carol, chain):
    deadline = chain.pending_timestamp + 3600
    v, r, s = permit_signature(token, carol, bob, JOY, deadline, nonce=token.nonces(alice))
    with reverts_with("ERC2612InvalidSigner"):
        token.permit(alice, bob, JOY, deadline, v, r, s, sender=bob)


def test_permit__other_chain_signature__reverts(token, alice, bob, chain):
    deadline = chain.pending_timestamp + 3600
    v, r, s = permit_signature(token, alice, bob, JOY, deadline, chain_id=chain.chain_id + 1)
    with reverts_with("ERC2612InvalidSigner"):
        token.permit(alice, bob, JOY, deadline, v, r, s, sender=bob)


# ---- votes (ERC20Votes) ----


def test_votes__before_delegation__are_zero(token, alice):
    assert token.balanceOf(alice) > 0
    assert token.getVotes(alice) == 0


def test_delegate__to_self__activates_votes_and_checkpoints(token, alice, bob, chain):
    token.invoke_transaction("delegate", alice, sender=alice)
    block_delegated = chain.blocks.head.number
    assert token.getVotes(alice) == token.balanceOf(alice)
    token.transfer(bob, 10 * JOY, sender=alice)
    block_after_transfer = chain.blocks.head.number
    chain.mine()
    assert token.getPastVotes(alice, block_delegated) == 50_000_000 * JOY
    assert token.getPastVotes(alice, block_after_transfer) == 50_000_000 * JOY - 10 * JOY
    assert token.numCheckpoints(alice) == 2


def test_delegate__to_another__moves_voting_power_not_balance(token, alice, bob):
    receipt = token.invoke_transaction("delegate", bob, sender=alice)
    assert token.delegates(alice) == bob.address
    assert token.getVotes(bob) == token.balanceOf(alice)
    assert token.getVotes(alice) == 0
    assert token.balanceOf(alice) == 50_000_000 * JOY
    assert token.DelegateChanged(alice, "0x" + "00" * 20, bob) in receipt.events


def test_past_votes__future_timepoint__reverts(token, alice, chain):
    with reverts_with("ERC5805FutureLookup", abi=token):
        token.getPastVotes(alice, chain.blocks.head.number + 10)


def test_clock__is_block_number(token, chain):
    assert token.CLOCK_MODE() == "mode=blocknumber&from=default"
    assert token.clock() == chain.blocks.head.number
