"""joynet.feeless.bridger and links: what a checkpoint of a feeless channel counts, the stream author's
consent to a link, and the bridge board where the committee's signatures meet (no chain needed: the EIP-712 signatures are checked off chain)."""

import asyncio

import pytest
from eth_account import Account

from joynet import IOTAInferenceHandler
from joynet.chain.constants import ZERO32
from eth_utils import to_checksum_address

from joynet.chain.validator import StreamLink, sign_checkpoint, sign_stream_link
from joynet.channels.errors import NotAuthorizedError
from joynet.feeless.bridger import BridgeBoard, BridgeError, build_checkpoint
from joynet.feeless.claims import NODE_KEY, STREAM_LINK, Bindings, ChannelClaim, ConsentWatch
from joynet.channels import SQLiteLedger
from joynet.channels.merkle import merkle_leaf, merkle_root

NODE_SEED = "abandon " * 11 + "about"
REQUESTER_SEED = "legal winner thank year wave sausage worth useful legal winner thank yellow"
NODE_A, NODE_B = "0x" + "aa" * 20, "0x" + "0b" * 20
CHAIN_ID, VALIDATOR = 31337, "0x" + "11" * 20
MEMBERS = [Account.create() for _ in range(3)]
MODEL_ID, OTHER_MODEL = b"\x01" * 32, b"\x02" * 32
OWNER, SQUATTER = "0x" + "0c" * 20, "0x" + "0d" * 20


def claim(kind, model_id=MODEL_ID, account=OWNER, chain_id=CHAIN_ID, validator=VALIDATOR):
    return ChannelClaim(kind, model_id, to_checksum_address(account), chain_id, to_checksum_address(validator))


@pytest.fixture
def ledger(tmp_path):
    return SQLiteLedger(tmp_path / "channels.sqlite3")


SECOND_NODE_SEED = "zoo " * 11 + "wrong"


async def admitted_channel(ledger):
    """(node, requester, channel id): a private model channel whose author admitted the requester."""
    node = IOTAInferenceHandler(wallet_seed=NODE_SEED, transport=ledger)
    requester = IOTAInferenceHandler(wallet_seed=REQUESTER_SEED, transport=ledger)
    channel_id = await node.create_model_channel("m", private=True)
    await requester.subscribe(channel_id)
    await node.admit_pending(channel_id)
    return node, requester, channel_id


def channel_with_traffic(ledger, answers, vouch=None):
    """A private model channel with two requests by the requester; ``answers``: (request index,
    answering key: "node", "second" or "requester", node address named, error) in order. The
    channel's author ("node") and an admitted second node ("second") may answer; ``vouch`` (key name
    -> node; default node A for "node", node B for "second") says which node each key vouches for
    in a ``node-key`` claim."""
    vouch = {"node": NODE_A, "second": NODE_B} if vouch is None else vouch

    async def scenario():
        node = IOTAInferenceHandler(wallet_seed=NODE_SEED, transport=ledger)
        second = IOTAInferenceHandler(wallet_seed=SECOND_NODE_SEED, transport=ledger)
        requester = IOTAInferenceHandler(wallet_seed=REQUESTER_SEED, transport=ledger)
        channel_id = await node.create_model_channel("m", private=True)
        for subscriber in (second, requester):
            await subscriber.subscribe(channel_id)
        await node.admit_pending(channel_id)
        keys = {"node": node, "second": second, "requester": requester}
        for name, address in vouch.items():
            await keys[name].post_claim(channel_id, claim(NODE_KEY, account=address))
        requests = [await requester.send_request(channel_id, "m", {"x": i}) for i in range(2)]
        for index, key, address, error in answers:
            answer = None if error else {"y": 1}
            await keys[key].send_response(channel_id, requests[index], answer, node=address, error=error)
        return bytes.fromhex(channel_id[2:]), {name: handler.identity.public_key for name, handler in keys.items()}

    return asyncio.run(scenario())


def chain_binding(keys, binds):
    """Bindings whose chain binds each node of ``binds`` (node -> key name) to that key."""
    table = {to_checksum_address(node): keys[name] for node, name in binds.items()}
    return Bindings(MODEL_ID, CHAIN_ID, VALIDATOR, table.get)


def counted(checkpoint):
    return [(entry.node.lower(), entry.count) for entry in checkpoint.usage] if checkpoint else []


def checkpoint_of(ledger, stream, bindings, **options):
    return build_checkpoint(ledger, stream, 0, ZERO32, has_checkpoint=False, bindings=bindings, **options)


def test_build_checkpoint__served_first_answers_of_bound_keys__counted_per_node_sorted_and_root_of_all_messages(ledger):
    stream, keys = channel_with_traffic(
        ledger, [(0, "node", NODE_A, None), (0, "node", NODE_A, None), (1, "second", NODE_B, None)]
    )
    checkpoint = checkpoint_of(ledger, stream, chain_binding(keys, {NODE_A: "node", NODE_B: "second"}))
    hashes = [m.hash for m in ledger.read(stream)]
    assert counted(checkpoint) == [(NODE_B, 1), (NODE_A, 1)]  # one each (the second answer is not), by address
    assert (checkpoint.sequence, checkpoint.headHash, checkpoint.previousHead) == (len(hashes) - 1, hashes[-1], ZERO32)
    assert checkpoint.messagesRoot == merkle_root([merkle_leaf(h) for h in hashes])


@pytest.mark.parametrize("answer, binds", [
    # an admitted requester posing as a node: its key vouched for nobody and is bound to nobody
    ((1, "requester", NODE_B, None), {NODE_A: "node"}),
    # a bound node naming another node to credit
    ((1, "node", NODE_B, None), {NODE_A: "node"}),
    # a node whose key vouched for it on the stream but is not bound on chain (yet, or any more)
    ((1, "second", NODE_B, None), {NODE_A: "node"}),
    # the chain binds node B to the author's key (B bound a key it does not hold): the key never vouched for B
    ((1, "node", NODE_B, None), {NODE_A: "node", NODE_B: "node"}),
])
def test_build_checkpoint__answer_not_by_the_named_nodes_bound_and_vouching_key__not_counted(ledger, answer, binds):
    stream, keys = channel_with_traffic(ledger, [(0, "node", NODE_A, None), answer])
    assert counted(checkpoint_of(ledger, stream, chain_binding(keys, binds))) == [(NODE_A, 1)]


def test_build_checkpoint__key_bound_on_chain_that_never_vouched__not_counted(ledger):
    stream, keys = channel_with_traffic(ledger, [(0, "node", NODE_A, None)], vouch={})
    assert checkpoint_of(ledger, stream, chain_binding(keys, {NODE_A: "node"})) is None


def test_build_checkpoint__a_key_answering_its_own_request__not_counted(ledger):
    stream, keys = channel_with_traffic(ledger, [(1, "requester", NODE_B, None)], vouch={"requester": NODE_B})
    assert checkpoint_of(ledger, stream, chain_binding(keys, {NODE_B: "requester"})) is None  # bound and vouched


def test_build_checkpoint__declined_request__not_counted(ledger):
    stream, keys = channel_with_traffic(
        ledger, [(0, "node", NODE_A, "no valid access credential"), (1, "node", NODE_A, None)]
    )
    assert counted(checkpoint_of(ledger, stream, chain_binding(keys, {NODE_A: "node"}))) == [(NODE_A, 1)]


def test_build_checkpoint__after_a_checkpoint__only_new_answers_and_links_to_its_head(ledger):
    stream, keys = channel_with_traffic(ledger, [(0, "node", NODE_A, None)])
    bindings = chain_binding(keys, {NODE_A: "node"})
    first = checkpoint_of(ledger, stream, bindings)
    assert build_checkpoint(ledger, stream, first.sequence, first.headHash, has_checkpoint=True, bindings=bindings) is None
    with pytest.raises(BridgeError, match="not in the channel"):
        build_checkpoint(ledger, stream, first.sequence, b"\x07" * 32, has_checkpoint=True, bindings=bindings)


def test_board__members_signatures__collected_per_checkpoint_outsiders_and_forgeries_ignored(ledger):
    stream, keys = channel_with_traffic(ledger, [(0, "node", NODE_A, None)])
    checkpoint = checkpoint_of(ledger, stream, chain_binding(keys, {NODE_A: "node"}))
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


# ---- stream links ----

def consent(model_id=MODEL_ID, owner=OWNER, chain_id=CHAIN_ID, validator=VALIDATOR):
    return claim(STREAM_LINK, model_id, owner, chain_id, validator)


def stream_with_consents(ledger, *consents, by_subscriber=()):
    """A model channel whose author posts ``consents`` (in order) and whose admitted subscriber
    posts ``by_subscriber`` first."""

    async def scenario():
        node, requester, channel_id = await admitted_channel(ledger)
        for forged in by_subscriber:
            requester._session(channel_id).channel.publish(public=forged.to_public())
        for given in consents:
            await node.post_claim(channel_id, given)
        return channel_id

    channel_id = asyncio.run(scenario())
    return bytes.fromhex(channel_id[2:]), channel_id


def test_author_consent__authors_packet__found_for_its_chain_and_validator(ledger):
    stream, _ = stream_with_consents(ledger, consent())
    assert ConsentWatch(ledger, stream, CHAIN_ID, VALIDATOR).read() == consent()
    assert ConsentWatch(ledger, stream, 1, VALIDATOR).read() is None  # another chain
    assert ConsentWatch(ledger, stream, CHAIN_ID, "0x" + "22" * 20).read() is None  # another bridge


def test_author_consent__a_subscribers_packet__is_no_consent(ledger):
    stream, _ = stream_with_consents(ledger, by_subscriber=[consent(owner=SQUATTER)])
    assert ConsentWatch(ledger, stream, CHAIN_ID, VALIDATOR).read() is None


def test_consent_watch__consent_posted_after_a_read__found_by_the_next_read(ledger):
    stream, channel_id = stream_with_consents(ledger)
    watch = ConsentWatch(ledger, stream, CHAIN_ID, VALIDATOR)
    assert watch.read() is None
    asyncio.run(IOTAInferenceHandler(wallet_seed=NODE_SEED, transport=ledger).post_claim(channel_id, consent()))
    assert watch.read() == consent()


def test_author_consent__a_later_consent_to_another_model__ignored(ledger):
    stream, _ = stream_with_consents(ledger, consent(), consent(model_id=OTHER_MODEL, owner=SQUATTER))
    assert ConsentWatch(ledger, stream, CHAIN_ID, VALIDATOR).read() == consent()


@pytest.mark.parametrize("public", [
    b"not json", b"[]", b'{"kind":"stream-link"}',
    b'{"kind":"stream-link","modelId":"0x01","account":"0x' + b"0c" * 20 + b'","chainId":31337,"validator":"0x' + b"11" * 20 + b'"}',
    b'{"kind":"stream-link","modelId":"0x' + b"01" * 32 + b'","account":"nobody","chainId":31337,"validator":"0x' + b"11" * 20 + b'"}',
    b'{"kind":"stream-link","modelId":"0x' + b"01" * 32 + b'","account":"0x' + b"0c" * 20 + b'","chainId":"31337","validator":"0x' + b"11" * 20 + b'"}',
    b'{"kind":"stream-link","modelId":"0x' + b"01" * 32 + b'","account":"0x' + b"0c" * 20 + b'","chainId":true,"validator":"0x' + b"11" * 20 + b'"}',
])
def test_author_consent__malformed_packet_then_a_good_one__the_good_one_counts(ledger, public):
    async def scenario():
        node = IOTAInferenceHandler(wallet_seed=NODE_SEED, transport=ledger)
        channel_id = await node.create_model_channel("m", private=False, open=False)
        node._session(channel_id).channel.publish(public=public)
        await node.post_claim(channel_id, consent())
        return bytes.fromhex(channel_id[2:])

    assert ConsentWatch(ledger, asyncio.run(scenario()), CHAIN_ID, VALIDATOR).read() == consent()


def test_post_claim__not_the_author__refused(ledger):
    _, channel_id = stream_with_consents(ledger)
    requester = IOTAInferenceHandler(wallet_seed=REQUESTER_SEED, transport=ledger)
    with pytest.raises(NotAuthorizedError, match="only the channel's author"):
        asyncio.run(requester.post_claim(channel_id, consent()))


def test_board__link_signatures__members_only_and_never_moved_to_another_link(ledger):
    stream, _ = stream_with_consents(ledger, consent())
    link, squat = StreamLink(stream, MODEL_ID, to_checksum_address(OWNER)), StreamLink(stream, OTHER_MODEL, to_checksum_address(SQUATTER))
    members = {member.address for member in MEMBERS}
    board = BridgeBoard(ledger, CHAIN_ID, VALIDATOR)
    for account in (MEMBERS[0], MEMBERS[1], Account.create()):  # the last is no member
        signer, signature = sign_stream_link(account.key, link, CHAIN_ID, VALIDATOR)
        board.post_link(link, signer, signature)
    _, signature = sign_stream_link(MEMBERS[2].key, link, CHAIN_ID, VALIDATOR)
    board.post_link(squat, MEMBERS[2].address, signature)  # a signature moved onto the squatter's link
    signatures = board.link_signatures(link, members.__contains__)
    assert set(signatures) == {MEMBERS[0].address, MEMBERS[1].address}
    assert board.link_signatures(squat, members.__contains__) == {}


def test_build_checkpoint__private_channel_with_the_bridgers_answer_check__nothing_credited(ledger):
    """A private channel's answers are masked from the bridgers: they cannot check them, so the
    bridger agent's check credits none (a private model's usage is not paid)."""
    from joynet.feeless.checks import answer_check
    from joynet.models.package import ModelPackage

    stream, keys = channel_with_traffic(ledger, [(0, "node", NODE_A, None), (1, "node", NODE_A, None)])
    bindings = chain_binding(keys, {NODE_A: "node"})
    assert counted(checkpoint_of(ledger, stream, bindings)) == [(NODE_A.lower(), 2)]  # who answered: bound
    check = answer_check(ModelPackage(cid="unused", metadata={}, files={}), lambda signals, proof: True)
    assert checkpoint_of(ledger, stream, bindings, check=check) is None
