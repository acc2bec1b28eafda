"""joynet.feeless.bridger: what a checkpoint of a feeless channel counts, and the bridge board where the
committee's signatures meet (no chain needed: the EIP-712 signatures are checked off chain)."""

import asyncio

import pytest
from eth_account import Account

from joynet import IOTAInferenceHandler
from joynet.chain.constants import ZERO32
from joynet.chain.validator import sign_checkpoint
from joynet.feeless.bridger import BridgeBoard, BridgeError, build_checkpoint
from joynet.channels import SQLiteLedger
from joynet.channels.merkle import merkle_leaf, merkle_root

NODE_SEED = "abandon " * 11 + "about"
REQUESTER_SEED = "legal winner thank year wave sausage worth useful legal winner thank yellow"
NODE_A, NODE_B = "0x" + "aa" * 20, "0x" + "0b" * 20
CHAIN_ID, VALIDATOR = 31337, "0x" + "11" * 20
MEMBERS = [Account.create() for _ in range(3)]


@pytest.fixture
def ledger(tmp_path):
    return SQLiteLedger(tmp_path / "channels.sqlite3")


def channel_with_traffic(ledger, answers):
    """A private model channel with two requests; ``answers``: (request index, node, error) in order."""

    async def scenario():
        node = IOTAInferenceHandler(wallet_seed=NODE_SEED, transport=ledger)
        requester = IOTAInferenceHandler(wallet_seed=REQUESTER_SEED, transport=ledger)
        channel_id = await node.create_model_channel("m")
        await requester.subscribe(channel_id)
        await node.admit_pending(channel_id)
        requests = [await requester.send_request(channel_id, "m", {"x": i}) for i in range(2)]
        for index, address, error in answers:
            await node.send_response(channel_id, requests[index], None if error else {"y": 1}, node=address, error=error)
        # an admitted requester posing as a node is never counted
        await requester.send_response(channel_id, requests[1], {"y": 2}, node=NODE_B)
        return bytes.fromhex(channel_id[2:])

    return asyncio.run(scenario())


def test_build_checkpoint__served_first_answers__counted_per_node_sorted_and_root_of_all_messages(ledger):
    stream = channel_with_traffic(ledger, [(0, NODE_A, None), (0, NODE_A, None), (1, NODE_B, None)])
    checkpoint = build_checkpoint(ledger, stream, 0, ZERO32, has_checkpoint=False)
    hashes = [m.hash for m in ledger.read(stream)]
    assert [(entry.node.lower(), entry.count) for entry in checkpoint.usage] == [(NODE_B, 1), (NODE_A, 1)]  # by address
    assert (checkpoint.sequence, checkpoint.headHash, checkpoint.previousHead) == (len(hashes) - 1, hashes[-1], ZERO32)
    assert checkpoint.messagesRoot == merkle_root([merkle_leaf(h) for h in hashes])


def test_build_checkpoint__declined_request__not_counted(ledger):
    stream = channel_with_traffic(ledger, [(0, NODE_A, "no valid access credential"), (1, NODE_A, None)])
    checkpoint = build_checkpoint(ledger, stream, 0, ZERO32, has_checkpoint=False)
    assert [(entry.node.lower(), entry.count) for entry in checkpoint.usage] == [(NODE_A, 1)]


def test_build_checkpoint__after_a_checkpoint__only_new_answers_and_links_to_its_head(ledger):
    stream = channel_with_traffic(ledger, [(0, NODE_A, None)])
    first = build_checkpoint(ledger, stream, 0, ZERO32, has_checkpoint=False)
    assert build_checkpoint(ledger, stream, first.sequence, first.headHash, has_checkpoint=True) is None
    with pytest.raises(BridgeError, match="not in the channel"):
        build_checkpoint(ledger, stream, first.sequence, b"\x07" * 32, has_checkpoint=True)


def test_board__members_signatures__collected_per_checkpoint_outsiders_and_forgeries_ignored(ledger):
    stream = channel_with_traffic(ledger, [(0, NODE_A, None)])
    checkpoint = build_checkpoint(ledger, stream, 0, ZERO32, has_checkpoint=False)
    members = {member.address for member in MEMBERS}
    board = BridgeBoard(ledger, CHAIN_ID, VALIDATOR)
    for account in (MEMBERS[0], MEMBERS[1], Account.create()):  # the last is no member
        signer, signature = sign_checkpoint(account.key, checkpoint, CHAIN_ID, VALIDATOR)
        board.post(checkpoint, signer, signature)
    inflated = checkpoint._replace(usage=[checkpoint.usage[0]._replace(count=99)])
    _, signature = sign_checkpoint(MEMBERS[2].key, checkpoint, CHAIN_ID, VALIDATOR)
    board.post(inflated, MEMBERS[2].address, signature)  # a signature moved onto another checkpoint

    other_process = BridgeBoard(SQLiteLedger(ledger.path), CHAIN_ID, VALIDATOR)  # same board, another handle
    (proposal,) = [p for p in other_process.proposals(stream, ZERO32, members.__contains__) if p.checkpoint == checkpoint]
    assert set(proposal.signatures) == {MEMBERS[0].address, MEMBERS[1].address}
    assert all(p.checkpoint != inflated or not p.signatures for p in other_process.proposals(stream, ZERO32, members.__contains__))
    assert other_process.proposals(stream, b"\x01" * 32, members.__contains__) == []  # not from the chain's head
