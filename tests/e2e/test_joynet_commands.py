"""The ``joynet`` commands on the suite's anvil, run as `joynet.cli.main([...])` in this process
with the deployment saved where they look for it: `model update|deactivate`, `request` (end to
end with one `ape run edge_agent` serving the digits ZK model), `node status`, `credential
issue|revoke` and `gov propose|vote|queue|execute|status`. Each success is checked on chain and
each refusal by its one-line message and exit status 1, before anything is sent."""

import asyncio
import json
import subprocess
import sys
from dataclasses import dataclass

import pytest
from eth_utils import keccak
from helpers import PROJECT_ROOT
from helpers.edge_agents import EdgeAgent, agent_environment, events_of
from helpers.model_directory import DESCRIPTION, write_model_directory

from joynet import JOY, ModelMarketplace
from joynet.chain.dao import ProposalState
from joynet.chain.marketplace import RequestStatus, model_key
from joynet.channels import ChannelIdentity, SQLiteLedger
from joynet.cli import main
from joynet.identity.credentials import DIDIdentity, ModelAccessPolicy, RevokedCredentialError
from joynet.models.builtin import write_digits_package
from joynet.models.package import load_model_metadata, publish_model
from joynet.storage import EmbeddedStore

run = asyncio.run
OWNED, DIGITS, FEELESS = "cli-owned", "cli-digits", "cli-feeless"
DIGITS_PRICE = 1 * JOY
STREAM = "0x" + "5e" * 32
# The BIP-39 test vector: a valid mnemonic, for the owner's DID key.
OWNER_MNEMONIC = " ".join(["abandon"] * 11 + ["about"])
FEES_CALL = "ModelMarketplace.setFeeShares(7000, 2500, 500)"
DISCARD = "http://127.0.0.1:9"  # the discard port: nothing listens


@dataclass
class Finished:
    status: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return EmbeddedStore(tmp_path_factory.mktemp("cli-ipfs"))


@pytest.fixture(scope="module")
def cli_env(deployment, store, chain, tmp_path_factory, marketplace, coordinator, token, dao, timelock,
            alice, bob, carol, model_owner, requester, operators):
    """The environment of the commands (and of the agent): the deployment file, the store, the
    channel ledger; no account, store daemon or channel daemon from the outer environment. Names
    the session's contracts so that they are set up before any module snapshot."""
    env = agent_environment(deployment, chain, store.directory, tmp_path_factory.mktemp("cli-deployments"))
    env["JOYNET_CHANNEL_DB"] = str(tmp_path_factory.mktemp("cli-channels") / "channels.sqlite3")
    with pytest.MonkeyPatch.context() as patch:
        for name in ("JOYNET_DEPLOYMENTS_DIR", "JOYNET_IPFS_DIR", "JOYNET_CHANNEL_DB"):
            patch.setenv(name, env[name])
        for name in ("JOYNET_ACCOUNT", "JOYNET_IPFS_API", "JOYNET_CHANNEL_API", "JOYNET_NETWORK", "JOYNET_CHANNEL_MNEMONIC"):
            patch.delenv(name, raising=False)
            env.pop(name, None)
        yield env


@pytest.fixture
def joynet(cli_env, capsys):
    """Runs `joynet ARGS` in this process; returns its exit status, stdout and stderr."""

    def command(*args: str) -> Finished:
        capsys.readouterr()
        status = main([str(arg) for arg in args])
        captured = capsys.readouterr()
        return Finished(status, captured.out, captured.err)

    return command


def refused(finished: Finished, message: str) -> None:
    """A command that failed the way every refusal does: one line naming why, exit status 1."""
    assert finished.status == 1, finished
    assert finished.err.startswith("joynet: error: ") and message in finished.err, finished.err
    assert finished.err.count("\n") == 1 and finished.out == "", finished


@pytest.fixture(scope="module")
def cli_owned(cli_env, marketplace, model_owner, store, tmp_path_factory):
    """A model of test:4's, published from a model directory and registered at 1 JOY."""
    cid = run(publish_model(store, write_model_directory(tmp_path_factory.mktemp("owned") / "model")))
    owner = ModelMarketplace(contract_address=marketplace.address, account=model_owner)
    run(owner.register_model(OWNED, f"ipfs://{cid}", price=1 * JOY, weights_commitment=DESCRIPTION["weightsCommitment"]))
    return cid


@pytest.fixture(scope="module")
def cli_digits(cli_env, marketplace, model_owner, store, tmp_path_factory):
    """The digits MLP (ZK policy), registered at DIGITS_PRICE; and a feeless model of test:4's."""
    cid = run(publish_model(store, write_digits_package(tmp_path_factory.mktemp("digits") / "digits")))
    metadata = run(load_model_metadata(store, cid))
    owner = ModelMarketplace(contract_address=marketplace.address, account=model_owner)
    run(owner.register_model(DIGITS, f"ipfs://{cid}", price=DIGITS_PRICE, quorum=1,
                             weights_commitment=metadata["weightsCommitment"],
                             circuit_id=metadata["verification"]["circuitId"]))
    run(owner.register_model(FEELESS, f"ipfs://{cid}", price=0, iota_stream_id=STREAM,
                             weights_commitment=metadata["weightsCommitment"],
                             circuit_id=metadata["verification"]["circuitId"]))
    return cid


# ---- model update | deactivate ----


def test_model_update__owner_price_and_metadata__chain_changed_and_json_printed(
        joynet, cli_owned, marketplace, tmp_path):
    republished = write_model_directory(tmp_path / "v2", {**DESCRIPTION, "version": "1.0.1"})
    finished = joynet("model", "update", OWNED, "--price", "2.5", "--metadata", republished, "--account", "test:4")
    assert finished.status == 0, finished.err
    printed = finished.json()
    entry = marketplace.getModel(model_key(OWNED))
    assert entry.price == 25 * JOY // 10 and printed["price"] == str(entry.price)
    assert printed["metadataURI"] == entry.metadataURI != f"ipfs://{cli_owned}"
    assert printed["active"] is True and len(printed["transactions"]) == 2


@pytest.mark.parametrize(
    "args, message",
    [
        (["--price", "2", "--account", "test:5"], "belongs to 0x"),
        (["--account", "test:4"], "nothing to update: give --price JOY and/or --metadata SOURCE"),
        (["--price", "-1", "--account", "test:4"], "--price '-1': a JOY amount from 0"),
    ],
)
def test_model_update__refused__one_line_and_nothing_sent(joynet, cli_owned, marketplace, args, message):
    refused(joynet("model", "update", OWNED, *args), message)
    assert marketplace.getModel(model_key(OWNED)).price == 1 * JOY


def test_model_update__metadata_with_other_weights__refused_before_anything_is_sent(
        joynet, cli_owned, marketplace, tmp_path):
    other = write_model_directory(tmp_path / "other", {**DESCRIPTION, "weightsCommitment": "0x" + "cd" * 32})
    refused(joynet("model", "update", OWNED, "--metadata", other, "--account", "test:4"),
            "is not the registered 0x" + "ab" * 32 + ": nodes would refuse its weights")
    assert marketplace.getModel(model_key(OWNED)).metadataURI == f"ipfs://{cli_owned}"


def test_model_update__unknown_model__one_line(joynet, cli_owned):
    refused(joynet("model", "update", "cli-nobody", "--price", "1", "--account", "test:4"),
            "no model 'cli-nobody' is registered")


def test_model_deactivate__owner__inactive_then_refused_again_and_for_requests(joynet, cli_owned, marketplace):
    refused(joynet("model", "deactivate", OWNED, "--account", "test:5"), "sign with its owner's account")
    finished = joynet("model", "deactivate", OWNED, "--account", "test:4")
    assert finished.status == 0, finished.err
    assert finished.json()["active"] is False and not marketplace.getModel(model_key(OWNED)).active
    refused(joynet("model", "deactivate", OWNED, "--account", "test:4"), f"model {OWNED!r} is already deactivated")
    refused(joynet("request", OWNED, "--text", "hi", "--account", "test:5"),
            f"model {OWNED!r} was deactivated by its owner")


# ---- request ----


def test_request__no_deposit__says_to_deposit_and_sends_nothing(
        joynet, cli_digits, marketplace, requester, register_node, operators, tmp_path):
    register_node(operators[1], [model_key(DIGITS)])  # a node serves it: the balance is what is missing
    (tmp_path / "input.json").write_text(json.dumps({"pixels": [0] * 64}))
    before = marketplace.requestCount()
    refused(joynet("request", DIGITS, "--input", tmp_path / "input.json", "--account", "test:5"),
            f"no deposit: {requester.address} has 0.00 JOY deposited, below the price 1.00 JOY of 'cli-digits': "
            "add --deposit JOY")
    assert marketplace.requestCount() == before


def test_request__no_node_serving__refused_before_depositing_or_requesting(
        joynet, cli_digits, marketplace, requester, tmp_path):
    (tmp_path / "input.json").write_text(json.dumps({"pixels": [0] * 64}))
    before = marketplace.requestCount()
    refused(joynet("request", DIGITS, "--input", tmp_path / "input.json", "--deposit", "3", "--account", "test:5"),
            "model 'cli-digits' needs 1 node(s) with room and no node serves it: nothing was sent")
    assert marketplace.balances(requester) == 0 and marketplace.requestCount() == before


def test_request__feeless_model_no_node_serving__refused_before_asking_its_channel(
        joynet, cli_digits, marketplace, requester, tmp_path):
    (tmp_path / "input.json").write_text(json.dumps({"pixels": [0] * 64, "salt": "7"}))
    before = marketplace.requestCount()
    refused(joynet("request", FEELESS, "--input", tmp_path / "input.json", "--account", "test:5"),
            "no node serves model 'cli-feeless': its channel 0x")  # no channel was announced for its stream
    assert marketplace.requestCount() == before


@pytest.mark.parametrize(
    "args, message",
    [
        (["cli-nobody", "--text", "hi"], "unknown model 'cli-nobody': no model by that name is registered"),
        ([DIGITS, "--text", "hi"], "input does not match the inputSchema of model cli-digits"),
        ([DIGITS], "give the input: --input FILE (a JSON document) or --text TEXT"),
        ([DIGITS, "--text", "hi", "--deposit", "lots"], "--deposit 'lots' is not a number of JOY"),
    ],
)
def test_request__bad_request__one_line_and_nothing_sent(joynet, cli_digits, marketplace, args, message):
    before = marketplace.requestCount()
    refused(joynet("request", *args, "--account", "test:5"), message)
    assert marketplace.requestCount() == before


def test_request__one_agent_serving_digits__settles_output_checked_receipt_and_node_status(
        joynet, cli_digits, cli_env, marketplace, requester, operators, tmp_path):
    from joynet.zk import QuantizedMLP

    pixels = [0, 0, 5, 13, 9, 1, 0, 0] * 8
    (tmp_path / "input.json").write_text(json.dumps({"pixels": pixels}))
    agent = EdgeAgent.in_workdir(6, tmp_path, cli_env, [DIGITS])
    agent.start()
    try:
        agent.wait_ready()
        finished = joynet("request", DIGITS, "--input", tmp_path / "input.json", "--deposit", "2",
                          "--account", "test:5", "--timeout", "120")
        status = joynet("node", "status", operators[0].address, "--journal", agent.journal_path,
                        "--model", DIGITS, "--json")
    finally:
        agent.stop()
    assert finished.status == 0, finished.err + agent.tail()
    assert "submitted request" in finished.err and "settled request" in finished.err
    printed = finished.json()
    inference = QuantizedMLP.load().forward(pixels)
    assert printed["output"] == {"class": inference.label, "logits": list(inference.logits)}
    receipt = printed["receipt"]
    (settled,) = events_of(marketplace, "InferenceSettled", 0, requestId=receipt["request_id"])
    assert receipt["status"] == RequestStatus.Settled.name
    assert receipt["output_commitment"] == "0x" + bytes(settled.outputCommitment).hex()
    settling = settled.transaction_hash
    assert receipt["transaction_hash"] == (settling if isinstance(settling, str) else "0x" + bytes(settling).hex())
    assert receipt["block_number"] == settled.block_number
    assert receipt["policy"]["kind"] == "zk" and receipt["nodes"] == [operators[0].address]
    assert "settled only on a valid proof of circuit" in receipt["verified_by"]["chain"]
    assert marketplace.balances(requester) == 1 * JOY  # 2 deposited, 1 paid
    assert status.status == 0, status.err
    node = status.json()
    assert node["registered"] and node["models"] == [DIGITS] and node["jobs"] and node["stake"] > 0


# ---- node status ----


def test_node_status__registered_node__json_and_text(joynet, register_node, operators, cli_digits):
    operator = register_node(operators[1], [model_key(DIGITS)], stake=3_000 * JOY, capacity=5)
    finished = joynet("node", "status", operator.address, "--model", DIGITS, "--json")
    assert finished.status == 0, finished.err
    status = finished.json()
    assert (status["stake"], status["capacity"], status["active_tasks"], status["missed_deadlines"]) == (
        3_000 * JOY, 5, 0, 0)
    assert status["models"] == [DIGITS] and status["fees_unwithdrawn"] == 0
    text = joynet("node", "status", "--account", "test:7")
    assert text.status == 0 and "3,000.00 JOY" in text.out and "0 / 5 tasks" in text.out


@pytest.mark.parametrize(
    "args, message",
    [
        (["0x" + "00" * 19 + "01"], "0x0000000000000000000000000000000000000001 is not a registered node (no stake)"),
        (["0x1234"], "'0x1234' is not an address"),
        (["--account", "test:99"], "'test:99': there are"),
    ],
)
def test_node_status__not_a_node__one_line(joynet, args, message):
    refused(joynet("node", "status", *args), message)


# ---- credential issue | revoke ----


def test_credential__issue_then_revoke__node_admits_then_refuses_holder(joynet, cli_digits, cli_env):
    holder = ChannelIdentity.generate()
    holder_did = DIDIdentity(holder).did
    owner = DIDIdentity.from_mnemonic(OWNER_MNEMONIC)
    common = ["--mnemonic", OWNER_MNEMONIC, "--account", "test:4"]
    issued = joynet("credential", "issue", FEELESS, holder_did, "--expires-in", "3600", *common)
    assert issued.status == 0, issued.err
    credential = issued.json()
    assert (credential["issuer"], credential["holder"], credential["model"]) == (owner.did, holder_did, FEELESS)
    assert credential["marked_private"] is True
    policy = ModelAccessPolicy(SQLiteLedger(cli_env["JOYNET_CHANNEL_DB"]), owner.document(), FEELESS)
    assert policy.check(credential["credential"], holder.public_key).id == credential["id"]
    again = joynet("credential", "issue", FEELESS, holder_did, *common)
    assert again.status == 0 and again.json()["marked_private"] is False

    revoked = joynet("credential", "revoke", FEELESS, credential["credential"], *common)
    assert revoked.status == 0, revoked.err
    assert revoked.json()["revoked"] == [credential["id"]]
    with pytest.raises(RevokedCredentialError):
        policy.check(credential["credential"], holder.public_key)
    assert policy.check(again.json()["credential"], holder.public_key).id == again.json()["id"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["issue", FEELESS, "did:key:zNotAKey", "--account", "test:4"], "is not the did:key of an Ed25519 key"),
        (["issue", FEELESS, "{holder}", "--account", "test:5"], "belongs to 0x"),
        (["issue", DIGITS, "{holder}", "--account", "test:4"], "model 'cli-digits' is a paid model"),
        (["revoke", "cli-nobody", "urn:uuid:x", "--account", "test:4"], "no model 'cli-nobody' is registered"),
        (["revoke", FEELESS, "urn:uuid:x", "--account", "test:4", "--mnemonic", "abandon abandon"],
         "--mnemonic: not a valid BIP-39 mnemonic"),
    ],
)
def test_credential__refused__one_line(joynet, cli_digits, args, message):
    holder = DIDIdentity(ChannelIdentity.generate()).did
    args = [arg.replace("{holder}", holder) for arg in args]
    refused(joynet("credential", *args, *([] if "--mnemonic" in args else ["--mnemonic", OWNER_MNEMONIC])), message)


# ---- gov propose | vote | queue | execute | status ----


def test_gov__propose_vote_queue_execute__fee_shares_changed_and_timelock_respected(
        joynet, voters, dao, timelock, marketplace, chain):
    proposed = joynet("gov", "propose", "--description", "Royalty 25 %", "--call", FEES_CALL, "--account", "test:1")
    assert proposed.status == 0, proposed.err
    proposal = proposed.json()["proposal"]
    assert proposed.json()["state"] == "Pending"
    refused(joynet("gov", "vote", proposal, "for", "--account", "test:1"), "is Pending, not Active: no vote possible")

    chain.mine(dao.votingDelay() + 1)
    for account, support in (("test:1", "for"), ("test:2", "for"), ("test:3", "abstain")):
        voted = joynet("gov", "vote", proposal, support, "--account", account)
        assert voted.status == 0 and voted.json()["weight"] == str(50_000_000 * JOY), voted.err
    refused(joynet("gov", "vote", proposal, "against", "--account", "test:1"), "has already voted on proposal")
    status = joynet("gov", "status", proposal, "--json").json()
    assert status["state"] == "Active" and status["votes"]["for"] == str(100_000_000 * JOY)
    assert status["votes"]["abstain"] == str(50_000_000 * JOY) and status["eta"] is None

    refused(joynet("gov", "queue", proposal, "--account", "test:1"), "only a Succeeded one can be queued")
    chain.mine(dao.votingPeriod() + 1)
    queued = joynet("gov", "queue", proposal, "--account", "test:1")
    assert queued.status == 0 and queued.json()["eta"] == dao.proposalEta(int(proposal, 16)), queued.err
    refused(joynet("gov", "execute", proposal, "--account", "test:1"), "timelock: ")
    assert "s left (ETA " in joynet("gov", "execute", proposal).err

    chain.pending_timestamp += timelock.getMinDelay() + 1
    chain.mine()
    executed = joynet("gov", "execute", proposal, "--account", "test:1")
    assert executed.status == 0 and executed.json()["state"] == "Executed", executed.err
    assert (marketplace.nodeShareBps(), marketplace.ownerShareBps(), marketplace.protocolShareBps()) == (7000, 2500, 500)
    assert ProposalState(dao.state(int(proposal, 16))) is ProposalState.Executed
    listing = joynet("gov", "status")
    assert listing.status == 0 and "Executed" in listing.out and "Royalty 25 %" in listing.out


def test_gov_propose__signature_and_raw_calldata__same_call_as_named(joynet, voters, dao, deployment, chain):
    by_signature = joynet("gov", "propose", "--description", "by signature", "--target", "ModelMarketplace",
                          "--signature", "setFeeShares(uint16,uint16,uint16)", "7000", "2500", "500",
                          "--account", "test:1")
    assert by_signature.status == 0, by_signature.err
    (call,) = by_signature.json()["calls"]
    selector = keccak(text="setFeeShares(uint16,uint16,uint16)")[:4]
    assert call["calldata"].startswith("0x" + selector.hex())
    assert call["target"] == deployment.address("ModelMarketplace")
    raw = joynet("gov", "propose", "--description", "by calldata", "--target", call["target"],
                 "--calldata", call["calldata"], "--account", "test:1")
    assert raw.status == 0, raw.err
    ids = {by_signature.json()["proposal"], raw.json()["proposal"]}
    logs = events_of(dao, "ProposalCreated", chain.blocks.height - 1)
    assert {hex(log.proposalId) for log in logs} == ids
    assert {"0x" + bytes(log.calldatas[0]).hex() for log in logs} == {call["calldata"]}


@pytest.mark.parametrize(
    "args, message",
    [
        (["propose", "--description", "x", "--target", "ModelMarketplace", "--signature",
          "setFeeShares(uint16,uint16,uint16)", "7000", "2500", "501"],
         "would revert when the timelock executes it: ModelMarketplaceInvalidFeeShares"),
        (["propose", "--description", "x"], "nothing to propose"),
        (["propose", "--description", "x", "--target", "ModelMarketplace"], "give --target's call as --signature"),
        (["propose", "--description", "x", "--target", "Nowhere", "--calldata", "0x12345678"],
         "target 'Nowhere' is neither an address nor a contract of the deployment"),
        (["propose", "--description", "x", "--call", "ModelMarketplace.setFeeShares(1)"],
         "takes 3 argument(s)"),
        (["vote", "0x1234", "for"], "no proposal 0x1234 on this DAO"),
        (["execute", "12"], "no proposal 12 on this DAO"),
        (["status", "zz"], "'zz' is not a proposal id"),
    ],
)
def test_gov__refused__one_line(joynet, voters, args, message):
    refused(joynet("gov", *args, *(["--account", "test:1"] if args[0] != "status" else [])), message)


# ---- the chain and the deployment ----


@pytest.mark.parametrize(
    "args",
    [["node", "status", "0x" + "00" * 20], ["gov", "status"], ["request", DIGITS, "--text", "x"],
     ["model", "deactivate", OWNED]],
)
def test_commands__no_chain_running__say_to_start_one(joynet, monkeypatch, args):
    monkeypatch.setenv("APE_FOUNDRY_HOST", DISCARD)
    refused(joynet(*args), f"no local chain answers at {DISCARD}: start one")


def test_commands__unknown_network__one_line_naming_it(joynet):
    finished = joynet("gov", "status", "--network", "nowhere:local:foundry")
    refused(finished, "nowhere:local:foundry: No ecosystem named 'nowhere'. Options: ")
    assert "ethereum, " in finished.err


def test_node_status__as_a_process__reads_the_deployment_and_prints_json(cli_env, register_node, operators):
    operator = register_node(operators[2], [model_key(DIGITS)])
    finished = subprocess.run([sys.executable, "-m", "joynet.cli", "node", "status", operator.address, "--json"],
                              env=cli_env, capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=120)
    assert finished.returncode == 0, finished.stderr
    assert json.loads(finished.stdout)["stake"] == 2_000 * JOY


def test_commands__no_deployment_file__say_to_deploy(joynet, monkeypatch, tmp_path):
    monkeypatch.setenv("JOYNET_DEPLOYMENTS_DIR", str(tmp_path))
    refused(joynet("gov", "status"), f"no deployment at {tmp_path}/local.json: run `ape run deploy` on this network first")
