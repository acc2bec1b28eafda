"""The main job (``ape run demo``, what ``make demo`` runs): JoyNet end to end on a local chain.

1. a local anvil (Ape's provider) and the protocol deployed by ``ape run deploy``'s code, every
   role handed to the DAO;
2. the two built-in models published to an embedded store in the run's directory and registered:
   the digits MLP (ZK policy), MiniLM (quorum 3), and a feeless digits model (price 0, its channel
   as IOTA stream, linked in IOTAValidator);
3. three ``ape run edge_agent``, two ``ape run iota_bridger`` and one ``ape run dao_voter`` as
   separate processes on that chain;
4. paid requests for both models (each assigned from the block after the request: a digits
   request by its drawn agent's result, MiniLM's by the requester's client; each result checked
   against a local run; MiniLM's three nodes commit, then reveal), feeless requests over
   the channel (the requester verifies the proof), the bridgers' checkpoint, and a royalty change
   the voter supports carried through the timelock (and one outside its policy that it defeats);
5. a summary: requests and how each was verified, JOY flows, gas per step, proof time, latency.

Every agent process is stopped in all cases (success, failure, Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from ape import accounts, chain, networks

from joynet.chain.dao import GovernanceError, ModelGovernanceDAO, ProposalState, VoteType
from joynet.chain.deploy import JOY, deploy_protocol, load_deploy_config
from joynet.chain.deployment_file import deployment_path
from joynet.chain.marketplace import ModelMarketplace, RequestStatus, model_key
from joynet.processes import Agent, AgentSupervisor

if TYPE_CHECKING:  # imported at run time where the models are published (publish_and_register)
    from joynet.storage import EmbeddedStore

DIGITS, MINILM, FEELESS = "digits", "minilm", "digits-feeless"
PRICES = {DIGITS: 5 * JOY, MINILM: 6 * JOY}
# Ape's ten test accounts: who is who in the demo. The bridge committee is 7, 8 and 9
# (deploy-config.yaml); two of them run bridgers, which is the threshold.
DEPLOYER, VOTER, ALICE, BOB, MODEL_OWNER, REQUESTER = 0, 0, 1, 2, 4, 5
EDGE_NODES = {"edge-A": 3, "edge-B": 6, "edge-C": 9}
BRIDGERS = {"bridger-1": 7, "bridger-2": 8}
FEELESS_NODE = ALICE  # runs the feeless model's node (a staked node, paid from the model's budget)
FEELESS_BUDGET, FEELESS_RATE = 10 * JOY, JOY // 2  # the owner's sponsorship: budget, JOY per inference
# Development wallets (BIP-39 test vectors) of the feeless channel's node and requester.
NODE_WALLET = "abandon " * 11 + "about"
OWNER_WALLET = "letter advice cage absurd amount doctor acoustic avoid letter advice cage above"
REQUESTER_WALLET = "legal winner thank year wave sausage worth useful legal winner thank yellow"
SENTENCES = [
    "Edge nodes stake JOY and serve models.",
    "Zero-knowledge proofs bind outputs to inputs.",
    "The DAO governs every parameter.",
]
ROYALTY_WITHIN_POLICY = (6500, 2500, 1000)  # node / owner / protocol bps: owner 20 % -> 25 %
ROYALTY_OUTSIDE_POLICY = (5000, 4500, 500)  # owner 45 %: the contract allows it, the voter's policy not


class DemoError(RuntimeError):
    """Something the demo checks did not hold."""


@dataclass(frozen=True)
class DemoPlan:
    digits: int
    minilm: int
    feeless: int
    agent_start_timeout: float = 300.0
    settle_timeout: float = 120.0


FULL_PLAN = DemoPlan(digits=6, minilm=3, feeless=3)
SHORT_PLAN = DemoPlan(digits=2, minilm=1, feeless=1)


# ---- console: numbered, timed stages and a gas ledger ----


class Steps:
    def __init__(self):
        self.number = 0
        self.started = time.monotonic()
        self.gas: dict[str, list[int]] = {}

    @contextmanager
    def stage(self, title: str):
        """A numbered stage; any failure in it becomes one line naming the stage."""
        self.number += 1
        number, started = self.number, time.monotonic()
        click.secho(f"\n[{number}] {title}", bold=True)
        try:
            yield
        except (KeyboardInterrupt, SystemExit):
            raise
        except click.ClickException as error:
            raise click.ClickException(f"stage {number} ({title}) failed: {error.message}") from error
        except Exception as error:  # noqa: BLE001 - every failure is reported as the stage's
            raise click.ClickException(f"stage {number} ({title}) failed: {one_line(error)}") from error
        self.say(f"({time.monotonic() - started:.1f} s)")

    def say(self, text: str) -> None:
        click.echo(f"    {text}")

    def alert(self, text: str) -> None:
        click.secho(f"    {text}", fg="red", err=True)

    def record(self, label: str, receipt) -> None:
        self.gas.setdefault(label, []).append(receipt.gas_used)

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    name = type(error).__name__
    text = text if name in ("AgentError", "DemoError", "GovernanceError", "MarketplaceError") else f"{name}: {text}"
    return text if len(text) <= 300 else text[:299] + "…"


def joy(amount: int) -> str:
    return f"{amount / JOY:,.2f} JOY"


def p50(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def wait_until(predicate, timeout: float, what: str, supervisor: AgentSupervisor, interval: float = 0.1):
    """Polls ``predicate`` until it returns something truthy; an agent's death stops the wait."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        supervisor.check_alive()
        time.sleep(interval)
    raise DemoError(f"timed out after {timeout:.0f} s waiting for {what}")


# ---- what happened, for the summary ----


@dataclass
class PaidRequest:
    model: str
    request_id: int
    latency: float
    nodes_paid: int = 0
    owner_paid: int = 0
    protocol_paid: int = 0
    price: int = 0
    settled: bool = False
    checked: bool = False  # equal to the local reference


@dataclass
class FeelessRequest:
    seconds: float
    label: int
    expected: int
    proof_verified: bool


@dataclass
class Record:
    paid: list[PaidRequest] = field(default_factory=list)
    feeless: list[FeelessRequest] = field(default_factory=list)
    proof_seconds: list[float] = field(default_factory=list)
    checkpoints: list[dict] = field(default_factory=list)
    usage: dict = field(default_factory=dict)
    governance: dict = field(default_factory=dict)
    flows: dict = field(default_factory=dict)


# ---- the demo ----


class Demo:
    def __init__(self, plan: DemoPlan, workdir: Path, steps: Steps):
        self.plan, self.workdir, self.steps = plan, workdir, steps
        self.say = steps.say
        self.supervisor = AgentSupervisor(report=steps.say, alert=steps.alert)
        self.record = Record()
        self.accounts = accounts.test_accounts
        self.store: EmbeddedStore | None = None  # set when the models are published
        self.feeless_nodes: list = []
        self.owner_channel: Any = None  # the feeless model owner's channel handler, once it announced it
        self.references: dict[str, Callable[..., Any]] = {}
        self.frameworks: dict[str, str] = {}  # model name -> its metadata's framework, once published

    def published_store(self) -> EmbeddedStore:
        """The store the models were published to (by the stage that publishes them)."""
        if self.store is None:
            raise DemoError("the models are not published yet")
        return self.store

    # ---- stages ----

    def deploy(self) -> None:
        network = networks.provider.network
        self.say(f"anvil at {networks.provider.uri}, chain id {chain.chain_id}, block {chain.blocks.height}")
        deployer = self.accounts[DEPLOYER]
        self.deployment = deploy_protocol(deployer, load_deploy_config(network.name), list(self.accounts), log=self.say)
        self.deployment_file = deployment_path(network.name)
        self.deployment.save(self.deployment_file)
        blocks = list(chain.blocks.range(self.deployment.start_block, chain.blocks.height + 1))
        # anvil mines one block per transaction: a block's gas is its transaction's
        self.steps.gas["deploy and wiring"] = [block.gas_used for block in blocks if block.transactions]
        self.say(
            f"{sum(len(block.transactions) for block in blocks)} transactions; deployment written to "
            f"{self.deployment_file}"
        )
        contract = self.deployment.contract
        self.token, self.timelock = contract("JoyToken"), contract("TimelockController")
        self.dao, self.marketplace = contract("ModelGovernanceDAO"), contract("ModelMarketplace")
        self.coordinator, self.proof_of_use = contract("NodeCoordinator"), contract("ProofOfUse")
        self.validator = contract("IOTAValidator")
        admin = self.timelock.DEFAULT_ADMIN_ROLE()
        owners = {self.marketplace.owner(), self.coordinator.owner(), self.validator.owner()}
        if self.timelock.hasRole(admin, deployer) or owners != {self.timelock.address}:
            raise DemoError("an account other than the timelock still holds a role")
        self.say(
            f"treasury (timelock) holds {joy(self.token.balanceOf(self.timelock))}; deployer is timelock "
            f"admin: False; marketplace, coordinator and validator owned by the timelock"
        )

    def publish_and_register(self) -> None:
        from joynet.models.builtin import publish_builtin_models
        from joynet.storage import EmbeddedStore
        from joynet.zk import circuit_id

        self.store = EmbeddedStore(self.workdir / "ipfs")
        started = time.monotonic()
        cids = asyncio.run(publish_builtin_models(self.store))
        self.say(f"published to the embedded store {self.store.directory} in {time.monotonic() - started:.1f} s")
        owner = self.accounts[MODEL_OWNER]
        client = ModelMarketplace(contract_address=self.marketplace.address, account=owner)
        metadata = {name: json.loads(asyncio.run(self.store.cat(cid))) for name, cid in cids.items()}
        self.frameworks = {name: document["framework"] for name, document in metadata.items()}
        registered_from = chain.blocks.height
        if metadata[DIGITS]["verification"]["circuitId"] != "0x" + circuit_id().hex():
            raise DemoError("the digits package names another circuit than the committed one")
        for name in (DIGITS, MINILM):
            verification = metadata[name]["verification"]
            asyncio.run(
                client.register_model(
                    name,
                    f"ipfs://{cids[name]}",
                    price=PRICES[name],
                    weights_commitment=metadata[name]["weightsCommitment"],
                    quorum=verification["quorum"],
                    circuit_id=verification["circuitId"],
                )
            )
            policy = (
                f"ZK policy, circuit {verification['circuitId'][:18]}..."
                if verification["circuitId"]
                else f"quorum {verification['quorum']}"
            )
            self.say(
                f"{name:<15} ipfs://{cids[name][:16]}...  {joy(PRICES[name])}  {policy}  "
                f"weights {metadata[name]['weightsCommitment'][:18]}..."
            )

        # The feeless model: its owner announces an open channel, which staked nodes bound to the
        # model serve; the channel id is the model's stream.
        from joynet import InferenceNode
        from joynet.feeless.handler import IOTAInferenceHandler

        node_client = ModelMarketplace(contract_address=self.marketplace.address)
        self.serving = InferenceNode(
            store=self.store,
            cache_dir=self.workdir / "feeless-node",
            marketplace=node_client,
            iota_wallet_seed=NODE_WALLET,
        )
        self.requesting = InferenceNode(
            store=self.store,
            cache_dir=self.workdir / "feeless-requester",
            marketplace=node_client,
            iota_wallet_seed=REQUESTER_WALLET,
        )
        self.feeless_nodes = [self.serving, self.requesting]
        self.owner_channel = IOTAInferenceHandler(wallet_seed=OWNER_WALLET)
        self.channel_id = asyncio.run(self.owner_channel.create_model_channel(FEELESS, private=False, open=True))
        verification = metadata[DIGITS]["verification"]
        asyncio.run(
            client.register_model(
                FEELESS,
                f"ipfs://{cids[DIGITS]}",
                price=0,
                iota_stream_id=self.channel_id,
                weights_commitment=metadata[DIGITS]["weightsCommitment"],
                quorum=1,
                circuit_id=verification["circuitId"],
            )
        )
        # Each registration is two transactions: a commitment to (name, owner, salt), then the
        # registration itself from a later block.
        self.record_registrations(registered_from)
        # The stream's author (the owner) consents on the stream to carry this model of this owner;
        # the owner asks the bridgers, who link it once they saw that consent.
        from joynet.feeless.claims import STREAM_LINK, ChannelClaim

        consent = ChannelClaim(STREAM_LINK, model_key(FEELESS), owner.address, chain.chain_id, self.validator.address)
        asyncio.run(self.owner_channel.post_claim(self.channel_id, consent))
        stream = bytes.fromhex(self.channel_id[2:])
        receipt = self.validator.requestStreamLink(stream, model_key(FEELESS), sender=owner)
        self.steps.record("requestStreamLink", receipt)
        self.say(
            f"{FEELESS:<15} price 0, stream {self.channel_id[:18]}... (the owner's open channel, which the "
            f"network's nodes serve); the bridgers are asked to link it in IOTAValidator"
        )
        self.sponsor_feeless(owner)

    def sponsor_feeless(self, owner) -> None:
        """Feeless means sponsored: the node stakes and binds its channel key to the model, and the
        owner funds the model's budget, which pays the node per checkpointed inference."""
        node, model = self.accounts[FEELESS_NODE], model_key(FEELESS)
        stake = self.coordinator.minStake() + self.coordinator.taskBond()
        self.steps.record("approve", self.token.invoke_transaction("approve", self.coordinator, stake, sender=node))
        self.coordinator.registerNode(stake, 1, [model], sender=node)  # recorded with the agents' registrations
        # The node binds its channel key on chain, and the key vouches for the node on the stream.
        from joynet.feeless.claims import NODE_KEY, ChannelClaim

        handler = self.serving.iota_handler()
        asyncio.run(handler.ensure_subscribed(self.channel_id))  # a subscriber posts on an open channel
        self.steps.record(
            "bindChannelKey", self.validator.bindChannelKey(model, handler.identity.public_key, sender=node)
        )
        claim = ChannelClaim(NODE_KEY, model, node.address, chain.chain_id, self.validator.address)
        asyncio.run(handler.post_claim(self.channel_id, claim))
        receipt = self.token.invoke_transaction("approve", self.validator, FEELESS_BUDGET, sender=owner)
        self.steps.record("approve", receipt)
        self.steps.record("fundBudget", self.validator.fundBudget(model, FEELESS_BUDGET, sender=owner))
        self.steps.record("setFeelessRate", self.validator.setFeelessRate(model, FEELESS_RATE, sender=owner))
        self.say(
            f"{FEELESS:<15} sponsored: the owner funds a {joy(FEELESS_BUDGET)} budget paying {joy(FEELESS_RATE)} "
            f"per inference; node {node.address[:10]}... stakes {joy(stake)}, binds its channel key, and the key "
            f"vouches for it on the stream"
        )

    def record_registrations(self, after_block: int) -> None:
        """Records the gas of both steps of each model registration since ``after_block``."""
        for event, label in (
            ("ModelRegistrationCommitted", "commitModelRegistration"),
            ("ModelRegistered", "registerModel"),
        ):
            for log in getattr(self.marketplace, event).range(after_block + 1, chain.blocks.height + 1):
                self.steps.record(label, chain.get_receipt(log.transaction_hash))

    def start_agents(self, uri: str) -> None:
        from joynet.channels.ledger import default_ledger_path

        bob, voter = self.accounts[BOB], self.accounts[VOTER]
        receipt = self.token.invoke_transaction("delegate", voter, sender=bob)
        self.steps.record("delegate", receipt)
        self.say(f"bob delegates his {joy(self.token.balanceOf(bob))} of votes to the voter agent {voter.address}")
        env = {
            **os.environ,
            "APE_FOUNDRY_HOST": uri,
            "JOYNET_DEPLOYMENTS_DIR": str(self.deployment_file.parent),
            "JOYNET_IPFS_DIR": str(self.published_store().directory),
            "JOYNET_CHANNEL_DB": str(default_ledger_path()),
            "PYTHONUNBUFFERED": "1",
        }
        logs = self.workdir / "logs"
        for name, index in EDGE_NODES.items():
            agent_env = {**env, "JOYNET_MODEL_CACHE": str(self.workdir / f"cache-{name}")}
            self.supervisor.start(
                Agent(
                    name,
                    [
                        "edge_agent",
                        "--account-index",
                        str(index),
                        "--model",
                        DIGITS,
                        "--model",
                        MINILM,
                        "--capacity",
                        "4",
                        "--journal",
                        str(self.workdir / f"{name}.sqlite"),
                    ],
                    logs / f"{name}.log",
                    "listening for",
                    agent_env,
                )
            )
        for name, index in BRIDGERS.items():
            self.supervisor.start(
                Agent(
                    name,
                    ["iota_bridger", "--test-account", str(index), "--poll-seconds", "0.5"],
                    logs / f"{name}.log",
                    "iota_bridger: member",
                    env,
                )
            )
        self.supervisor.start(
            Agent(
                "voter",
                ["dao_voter", "--account", f"test:{VOTER}", "--poll-seconds", "0.2"],
                logs / "voter.log",
                "voting power of",
                env,
            )
        )
        self.say(f"logs in {logs}; waiting for each to be ready (edge agents load and warm up both models)")
        self.supervisor.wait_ready(self.plan.agent_start_timeout)
        self.baseline = self.balances()
        for name, index in EDGE_NODES.items():
            info = self.coordinator.nodeInfo(self.accounts[index])
            self.say(f"{name} {self.accounts[index].address}: stake {joy(info.stake)}, capacity {info.capacity}")
        for log in self.coordinator.NodeRegistered.range(self.deployment.start_block, chain.blocks.height + 1):
            self.steps.record("registerNode", chain.get_receipt(log.transaction_hash))
        voter_line = next(line for line in self.supervisor.agents[-1].log().splitlines() if "voting power" in line)
        self.say(f"voter: {voter_line.split('voting power of ', 1)[-1].strip()}")

    def balances(self) -> dict[str, int]:
        """Each party's JOY: wallet plus its balance in the marketplace, both read at one block
        (the agents still run: a fee withdrawal mined between the two reads would count twice
        or not at all)."""
        parties = {
            **{name: self.accounts[i].address for name, i in EDGE_NODES.items()},
            "owner": self.accounts[MODEL_OWNER].address,
            "requester": self.accounts[REQUESTER].address,
        }
        block = chain.blocks.height
        return {
            name: self.token.balanceOf(address, block_id=block) + self.marketplace.balances(address, block_id=block)
            for name, address in parties.items()
        }

    def load_references(self) -> None:
        """The local references: the quantized digits model, and sentence-transformers loaded
        straight from the wheel with the model's int8 quantization."""
        from sentence_transformers import SentenceTransformer

        from joynet.inference.runtimes.sentence_embedding import embedding_commitment, offline, quantize
        from joynet.models.builtin import minilm_source_dir
        from joynet.zk import QuantizedMLP
        from joynet.zk.digits import load_split

        offline()
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # its "Loading weights" bar would cut through the steps
        digits_model = QuantizedMLP.load()
        embedder = SentenceTransformer(str(minilm_source_dir()), device="cpu", local_files_only=True)
        _, pixels, _, labels = load_split()
        self.images = [
            ([int(p) for p in row], int(label)) for row, label in zip(pixels.tolist(), labels.tolist(), strict=False)
        ]
        self.references = {
            DIGITS: lambda pixels: digits_model.forward(pixels).label,
            MINILM: lambda text: embedding_commitment(quantize(embedder.encode([text]))),
        }

    def paid_requests(self) -> None:
        self.load_references()
        requester = self.accounts[REQUESTER]
        self.client = ModelMarketplace(contract_address=self.marketplace.address, account=requester)
        amount = PRICES[DIGITS] * (self.plan.digits + 1) + PRICES[MINILM] * self.plan.minilm
        asyncio.run(self.client.deposit(amount))
        self.steps.record("deposit", self.client.last_receipt)
        self.say(f"requester {requester.address} deposits {joy(amount)}: each request is paid from that balance")
        for pixels, label in self.images[: self.plan.digits]:
            self.digits_request(pixels, label)
        for text in SENTENCES[: self.plan.minilm]:
            self.minilm_request(text)

    def paid_request(self, model: str, document: dict, zk: bool):
        """Publishes the input, requests from the deposited balance (the client assigns a quorum
        request's nodes from the next block, unless an agent did first; a single-node request is
        assigned by its drawn agent's result), waits for the settlement; returns
        (PaidRequest, the InferenceResult, the ResultSubmitted logs: results or reveals)."""
        from joynet.inference.inputs import publish_input

        uri, commitment = asyncio.run(publish_input(self.published_store(), document, zk=zk))
        started = time.monotonic()
        request_id = asyncio.run(self.client.request_inference(model, commitment, uri, from_balance=True))
        try:
            wait_until(
                lambda: self.client.status(request_id) is not RequestStatus.Open,
                self.plan.settle_timeout,
                f"request {request_id} ({model}) to settle",
                self.supervisor,
                interval=0.05,
            )
        except DemoError:
            self.explain_unsettled(request_id)
            raise
        request = PaidRequest(model, request_id, time.monotonic() - started)
        self.record.paid.append(request)
        result = asyncio.run(self.client.get_result(request_id, timeout=0))
        if result.status is not RequestStatus.Settled:
            raise DemoError(f"request {request_id} ({model}) was refunded: {result.refund_reason}")
        request.settled = True
        (settled,) = self.marketplace.InferenceSettled.range(
            self.deployment.start_block, chain.blocks.height + 1, search_topics={"requestId": request_id}
        )
        request.nodes_paid, request.owner_paid, request.protocol_paid = (
            settled.nodesPaid,
            settled.ownerPaid,
            settled.protocolPaid,
        )
        request.price = request.nodes_paid + request.owner_paid + request.protocol_paid
        submitted = self.logs("ResultSubmitted", request_id)
        (requested,), (assigned,) = self.logs("InferenceRequested", request_id), self.logs("NodesAssigned", request_id)
        self.steps.record("requestInference (from balance)", chain.get_receipt(requested.transaction_hash))
        if len(assigned.nodes) == 1 and assigned.transaction_hash == submitted[0].transaction_hash:
            self.steps.record(f"submitResult+assign ({model})", chain.get_receipt(submitted[0].transaction_hash))
        elif len(assigned.nodes) == 1:  # assigned by a standby agent first: the drawn one was slow
            self.steps.record("assignNodes", chain.get_receipt(assigned.transaction_hash))
            self.steps.record(f"submitResult ({model})", chain.get_receipt(submitted[0].transaction_hash))
        else:
            self.steps.record("assignNodes", chain.get_receipt(assigned.transaction_hash))
            for log in self.logs("ResultCommitted", request_id):
                self.steps.record(f"commitResult ({model})", chain.get_receipt(log.transaction_hash))
            for log in submitted:  # the last reveal also judges and settles the request
                label = "revealResult+settle" if log.transaction_hash == settled.transaction_hash else "revealResult"
                self.steps.record(f"{label} ({model})", chain.get_receipt(log.transaction_hash))
        return request, result, submitted

    def logs(self, event: str, request_id: int) -> list:
        return list(
            getattr(self.marketplace, event).range(
                self.deployment.start_block, chain.blocks.height + 1, search_topics={"requestId": request_id}
            )
        )

    def explain_unsettled(self, request_id: int) -> None:
        """Shows whether the request was assigned, and which assigned agents have not submitted
        (or, in a quorum, not committed or not revealed), with the end of their logs."""
        assigned = self.client.get_request(request_id).nodes
        by_address = {self.accounts[index].address: name for name, index in EDGE_NODES.items()}
        if not assigned:
            try:
                drawn = ", ".join(by_address.get(node, node) for node in self.client.drawn_nodes(request_id))
            except Exception as why:  # noqa: BLE001 - a revert says why nobody could assign it
                drawn = f"none ({one_line(why)})"
            self.steps.alert(f"request {request_id}: no node was assigned; the draw names {drawn}")
            return
        committed = {log.node for log in self.logs("ResultCommitted", request_id)}
        submitted = {log.node for log in self.logs("ResultSubmitted", request_id)}
        for node in assigned:
            if node not in submitted and (agent := self.supervisor.find(by_address.get(node))):
                what = (
                    "no result"
                    if len(assigned) == 1
                    else "a commitment but no reveal"
                    if node in committed
                    else "no commitment"
                )
                self.steps.alert(
                    f"request {request_id}: {what} from {agent.name}; the end of {agent.log_path}:\n{agent.tail()}"
                )

    def digits_request(self, pixels: list[int], label: int) -> PaidRequest:
        from joynet.inference.inputs import digits_input

        request, result, submitted = self.paid_request(DIGITS, digits_input(pixels), zk=True)
        got, expected = self.settled_output(DIGITS, result)["class"], self.references[DIGITS](pixels)
        if got != expected:
            raise DemoError(f"request {request.request_id}: class {got}, but the local quantized model says {expected}")
        request.checked = True
        proof = self.proof_seconds(request.request_id, submitted[0].node)
        self.say(
            f"digits  #{request.request_id:<3} class {got} (label {label}, local model {expected})  "
            f"Groth16 proof by {submitted[0].node[:10]}... in {proof:.2f} s, verified on chain  "
            f"settled {request.latency:.2f} s after the request  owner +{joy(request.owner_paid)}"
        )
        return request

    def minilm_request(self, text: str) -> PaidRequest:
        request, result, submitted = self.paid_request(MINILM, {"text": text}, zk=False)
        self.settled_output(MINILM, result)
        expected = self.references[MINILM](text)
        if result.output_commitment != expected:
            raise DemoError(
                f"request {request.request_id}: the settled embedding commitment differs from the local "
                f"sentence-transformers run"
            )
        request.checked = True
        self.say(
            f"minilm  #{request.request_id:<3} {text!r}: {len(submitted)} nodes committed, then revealed "
            f"0x{result.output_commitment.hex()[:16]}... = local sentence-transformers  "
            f"settled {request.latency:.2f} s after the request"
        )
        return request

    def settled_output(self, model: str, result) -> dict:
        """The request's output document, read from the store and checked against the chain: this
        request's, with the settled commitment, and an output that commits to it
        (``OutputMismatchError`` otherwise)."""
        from joynet.inference.outputs import fetch_output

        return asyncio.run(fetch_output(self.published_store(), result, framework=self.frameworks[model]))

    def proof_seconds(self, request_id: int, node: str) -> float:
        """The proving time the node logged for the request ("proved in X s")."""
        name = next(name for name, index in EDGE_NODES.items() if self.accounts[index].address == node)
        agent = self.supervisor.find(name)
        if agent is None:
            raise DemoError(f"no agent {name} is running")
        marker = f"request {request_id}: computed"
        for line in agent.log().splitlines():
            if marker in line and "proved in " in line:
                seconds = float(line.split("proved in ", 1)[1].split(" s", 1)[0])
                self.record.proof_seconds.append(seconds)
                return seconds
        raise DemoError(f"{name} logged no proof for request {request_id}")

    def feeless_requests(self) -> None:
        node = self.accounts[FEELESS_NODE].address
        height = chain.blocks.height
        images = self.images[self.plan.digits : self.plan.digits + self.plan.feeless]

        async def scenario():
            from joynet.feeless.assignment import AssignmentBook
            from joynet.feeless.claims import Bindings
            from joynet.zk import random_salt

            bindings = Bindings.registered(self.serving.marketplace, FEELESS)
            served = asyncio.create_task(
                self.serving.serve_iota(
                    self.channel_id,
                    FEELESS,
                    node_address=node,
                    max_requests=len(images),
                    book=AssignmentBook(bindings),
                )
            )
            for pixels, label in images:
                started = time.monotonic()
                result = await self.requesting.execute_inference(
                    FEELESS, {"pixels": pixels, "salt": random_salt()}, use_iota=True
                )
                seconds = time.monotonic() - started
                expected = self.references[DIGITS](pixels)
                verified = result.proof_verified
                self.record.feeless.append(FeelessRequest(seconds, result.output["class"], expected, verified))
                self.say(
                    f"feeless class {result.output['class']} (label {label}, local model {expected})  "
                    f"proof by {node[:10]}... verified by the requester (snarkjs)  round trip {seconds:.2f} s"
                )
                if result.output["class"] != expected or not verified:
                    raise DemoError("a feeless answer differs from the local model or came without a verified proof")
            if await served != len(images):
                raise DemoError("the channel's node did not answer every request")

        asyncio.run(scenario())
        # The requester has no EVM account; what was mined meanwhile is the agents' own (a bridger
        # may already checkpoint the channel, a node may collect its fees).
        agents = {self.accounts[i].address for i in (*EDGE_NODES.values(), *BRIDGERS.values())}
        senders = [
            tx.sender
            for number in range(height + 1, chain.blocks.height + 1)
            for tx in chain.blocks[number].transactions
        ]
        if not set(senders) <= agents:
            raise DemoError(f"transactions by {sorted(set(senders) - agents)} during the feeless requests")
        self.say(
            f"requests and answers went over the channel: no transaction by the requester (the chain saw "
            f"{len(senders)} meanwhile, all by the agents)"
        )

    def checkpoint(self) -> None:
        stream = bytes.fromhex(self.channel_id[2:])
        wanted = len(self.record.feeless)

        def accepted():
            logs = list(
                self.validator.CheckpointAccepted.range(
                    self.deployment.start_block, chain.blocks.height + 1, search_topics={"streamId": stream}
                )
            )
            return logs if sum(log.inferences for log in logs) >= wanted else None

        logs = wait_until(
            accepted,
            self.plan.settle_timeout,
            f"the bridgers to checkpoint {wanted} inference(s)",
            self.supervisor,
            interval=0.25,
        )
        for linked in self.validator.StreamLinked.range(
            self.deployment.start_block, chain.blocks.height + 1, search_topics={"streamId": stream}
        ):
            receipt = chain.get_receipt(linked.transaction_hash)
            self.steps.record("linkStream", receipt)
            linker = next(name for name, index in BRIDGERS.items() if self.accounts[index].address == receipt.sender)
            self.say(f"stream linked by {linker}: the committee saw the stream author's consent (2 of 3 signed)")
        genesis, length = self.proof_of_use.genesisTime(), self.proof_of_use.epochLength()
        for log in logs:
            receipt = chain.get_receipt(log.transaction_hash)
            self.steps.record("submitCheckpoint", receipt)
            epoch = (chain.blocks[log.block_number].timestamp - genesis) // length
            submitter = next(name for name, index in BRIDGERS.items() if self.accounts[index].address == receipt.sender)
            self.record.checkpoints.append(
                {"sequence": log.sequence, "inferences": log.inferences, "epoch": epoch, "submitter": submitter}
            )
            self.say(
                f"checkpoint up to sequence {log.sequence}: {log.inferences} inference(s), signed by 2 of the "
                f"committee of 3, submitted by {submitter}, Merkle root 0x{bytes(log.messagesRoot).hex()[:16]}..."
            )
        epoch = self.record.checkpoints[-1]["epoch"]
        node, owner = self.accounts[FEELESS_NODE], self.accounts[MODEL_OWNER]
        usage = self.proof_of_use.modelUsage(epoch, model_key(FEELESS))
        checkpointed = sum(c["inferences"] for c in self.record.checkpoints)
        self.record.usage = {"epoch": epoch, "model": usage, "checkpointed": checkpointed}
        if usage != wanted:
            raise DemoError(f"ProofOfUse counts {usage} feeless inference(s) in epoch {epoch}, not {wanted}")
        node_weight, owner_weight = self.proof_of_use.nodeUsage(epoch, node), self.proof_of_use.ownerUsage(epoch, owner)
        model = model_key(FEELESS)
        earned, spent = self.validator.earningsOf(model, node), FEELESS_BUDGET - self.validator.budgetOf(model).balance
        if spent != wanted * FEELESS_RATE:
            raise DemoError(f"the budget paid {joy(spent)} for {wanted} inference(s) at {joy(FEELESS_RATE)} each")
        self.record.usage.update(budget_spent=spent, node_earned=earned)
        self.say(
            f"the budget paid {joy(spent)}: node {node.address[:10]}... earned {joy(earned)}, the protocol kept "
            f"{joy(spent - earned)} for the treasury"
        )
        self.say(
            f"ProofOfUse, epoch {epoch}: {usage} feeless inference(s) of {FEELESS} counted; reward weight this "
            f"epoch: node {node.address[:10]}... {joy(node_weight)}, owner {joy(owner_weight)} (the protocol's "
            f"share of what was paid: fees, and budgets for feeless usage)"
        )

    def governance(self) -> None:
        alice, voter = self.accounts[ALICE], self.accounts[VOTER]
        receipt = self.token.invoke_transaction("delegate", alice, sender=alice)
        self.steps.record("delegate", receipt)
        chain.mine()
        before = (
            self.marketplace.nodeShareBps(),
            self.marketplace.ownerShareBps(),
            self.marketplace.protocolShareBps(),
        )
        proposer = ModelGovernanceDAO(self.dao.address, account=alice)
        proposals = {}
        for label, shares in (("within", ROYALTY_WITHIN_POLICY), ("outside", ROYALTY_OUTSIDE_POLICY)):
            description = (
                f"Model-owner royalty {before[1] / 100:g} % -> {shares[1] / 100:g} % "
                f"(fee shares {'/'.join(map(str, shares))})"
            )
            proposal_id = asyncio.run(
                proposer.propose(
                    [self.marketplace.address], [0], [self.marketplace.setFeeShares.encode_input(*shares)], description
                )
            )
            self.steps.record("propose", proposer.last_receipt)
            proposals[label] = proposal_id
            self.say(f"alice proposes {description}: {hex(proposal_id)[:14]}...")
        chain.mine(self.dao.votingDelay() + 1)
        self.say(f"voting opens after {self.dao.votingDelay()} block; alice votes for both")
        for proposal_id in proposals.values():
            asyncio.run(proposer.castVote(proposal_id, True))
            self.steps.record("castVote", proposer.last_receipt)

        def voter_votes():
            logs = [
                log
                for log in self.dao.VoteCast.range(self.deployment.start_block, chain.blocks.height + 1)
                if log.voter == voter.address and log.proposalId in proposals.values()
            ]
            return logs if len(logs) == len(proposals) else None

        votes = {log.proposalId: log for log in wait_until(voter_votes, 60, "the voter agent's votes", self.supervisor)}
        for proposal_id in proposals.values():
            vote = votes[proposal_id]
            self.steps.record("castVote", chain.get_receipt(vote.transaction_hash))
            self.say(
                f"voter agent votes {VoteType(vote.support).name.upper()} on {hex(proposal_id)[:14]}... with "
                f"{joy(vote.weight)}: {vote.reason}"
            )
        chain.mine(self.dao.votingPeriod() + 1)
        states = {label: ProposalState(self.dao.state(pid)) for label, pid in proposals.items()}
        self.say(f"voting period over: within policy {states['within'].name}, outside policy {states['outside'].name}")
        if states != {"within": ProposalState.Succeeded, "outside": ProposalState.Defeated}:
            raise DemoError(
                f"expected Succeeded and Defeated, got {states['within'].name} and {states['outside'].name}"
            )

        accepted = proposals["within"]
        asyncio.run(proposer.queue(accepted))
        self.steps.record("queue", proposer.last_receipt)
        delay = self.timelock.getMinDelay()
        try:
            asyncio.run(proposer.execute(accepted))
        except GovernanceError as error:
            self.say(f"queued; executing now is refused: {error}")
        else:
            raise DemoError("the proposal was executed before its timelock delay")
        chain.pending_timestamp += delay + 1
        chain.mine()
        executor = ModelGovernanceDAO(self.dao.address, account=self.accounts[REQUESTER])
        asyncio.run(executor.execute(accepted))
        self.steps.record("execute", executor.last_receipt)
        after = (self.marketplace.nodeShareBps(), self.marketplace.ownerShareBps(), self.marketplace.protocolShareBps())
        if after != ROYALTY_WITHIN_POLICY:
            raise DemoError(f"the executed proposal left the fee shares at {after}")
        self.say(
            f"after {delay} s of chain time anyone executes: fee shares node/owner/protocol "
            f"{'/'.join(map(str, before))} -> {'/'.join(map(str, after))} bps"
        )
        self.record.governance = {
            "royalty_before_bps": before[1],
            "royalty_after_bps": after[1],
            "within_policy": {
                "state": ProposalState(self.dao.state(accepted)).name,
                "voter": VoteType(votes[accepted].support).name,
            },
            "outside_policy": {
                "state": states["outside"].name,
                "voter": VoteType(votes[proposals["outside"]].support).name,
            },
        }
        pixels, digit = self.images[self.plan.digits + self.plan.feeless]
        request = self.digits_request(pixels, digit)
        if request.owner_paid * 10_000 != request.price * after[1]:
            raise DemoError(f"the owner got {joy(request.owner_paid)} of {joy(request.price)} after the change")
        self.say(f"a request under the new royalty: the owner gets {after[1] / 100:g} % of {joy(request.price)}")

    def flows(self) -> None:
        after = self.balances()
        paid = self.record.paid
        refunds = sum(
            log.amount
            for log in self.marketplace.InferenceRefunded.range(self.deployment.start_block, chain.blocks.height + 1)
        )
        nodes = {name: after[name] - self.baseline[name] for name in EDGE_NODES}
        flows = {
            "requester_paid": self.baseline["requester"] - after["requester"],
            "refunded": refunds,
            "nodes_earned": nodes,
            "owner_royalty": after["owner"] - self.baseline["owner"],
            "protocol_share": sum(r.protocol_paid for r in paid),
        }
        if flows["requester_paid"] != sum(r.price for r in paid):
            raise DemoError("the requester's balance moved by something other than the settled prices")
        settled_to_nodes, settled_to_owner = sum(r.nodes_paid for r in paid), sum(r.owner_paid for r in paid)
        if sum(nodes.values()) != settled_to_nodes or flows["owner_royalty"] != settled_to_owner:
            raise DemoError("the nodes' or the owner's balances do not match the settlements")
        if self.marketplace.protocolEarnings() != flows["protocol_share"]:
            raise DemoError("the marketplace's protocol earnings do not match the settlements")
        self.record.flows = flows
        self.say(
            f"requester paid {joy(flows['requester_paid'])} = nodes {joy(sum(nodes.values()))} + owner "
            f"{joy(flows['owner_royalty'])} + protocol {joy(flows['protocol_share'])}; JOY is conserved"
        )

    def shutdown(self) -> None:
        """Stops the agents (SIGTERM, then SIGKILL) and closes the in-process nodes; raises if
        any process of theirs is left."""
        self.supervisor.stop_all()
        for node in self.feeless_nodes:
            asyncio.run(node.close())
        self.feeless_nodes = []
        if self.owner_channel is not None:
            self.owner_channel.close()
            self.owner_channel = None
        if left := self.supervisor.leftovers():
            raise DemoError(f"processes still running after the stop: {left}")

    # ---- summary ----

    def summary(self) -> dict:
        paid, record = self.record.paid, self.record
        models = {}
        for model, verified_by in (
            (DIGITS, "Groth16 proof verified on chain (ZK policy)"),
            (MINILM, "quorum of 3 nodes: sealed commitments, then the same result revealed"),
        ):
            requests = [r for r in paid if r.model == model]
            models[model] = {
                "made": len(requests),
                "settled": sum(r.settled for r in requests),
                "checked": sum(r.checked for r in requests),
                "verified_by": verified_by,
                "latency_p50_s": p50([r.latency for r in requests]),
            }
        models[DIGITS]["proof_p50_s"] = p50(record.proof_seconds)
        models[FEELESS] = {
            "made": len(record.feeless),
            "settled": record.usage.get("checkpointed", 0),
            "checked": sum(f.label == f.expected and f.proof_verified for f in record.feeless),
            "verified_by": "channel: proof verified by the requester; bridgers' checkpoint (2 of 3) on chain",
            "latency_p50_s": p50([f.seconds for f in record.feeless]),
        }
        return {
            "models": models,
            "checkpoints": record.checkpoints,
            "usage": record.usage,
            "governance": record.governance,
            "flows": record.flows,
            "gas": {
                label: {"txs": len(values), "per_tx": sum(values) // len(values)}
                for label, values in self.steps.gas.items()
            },
            "processes": [{"name": a.name, "pid": a.pid, "exit": a.exit_code} for a in self.supervisor.agents],
            "leftover_pids": self.supervisor.leftovers(),
            "seconds": round(self.steps.elapsed(), 1),
        }


def print_summary(summary: dict, short: bool) -> None:
    echo = click.echo
    click.secho(f"\nSummary ({'short' if short else 'full'} run, {summary['seconds']:.1f} s)", bold=True)
    echo(f"    {'model':<15} {'made':>4} {'settled':>7} {'checked':>7} {'p50 latency':>11}  verified by")
    for name, model in summary["models"].items():
        latency = f"{model['latency_p50_s']:.2f} s" if model["latency_p50_s"] is not None else "-"
        echo(
            f"    {name:<15} {model['made']:>4} {model['settled']:>7} {model['checked']:>7} {latency:>11}  "
            f"{model['verified_by']}"
        )
    echo("    latency: paid = request transaction to InferenceSettled; feeless = request to verified answer")
    echo(
        "    checked: equal to a local run (digits class of the quantized model; MiniLM commitment of "
        "sentence-transformers)"
    )
    proof = summary["models"][DIGITS].get("proof_p50_s")
    echo(f"    proof time p50 (edge agents, Groth16 with snarkjs): {proof:.2f} s" if proof is not None else "")
    usage = summary["usage"]
    echo(
        f"    checkpoints: {len(summary['checkpoints'])}, {usage.get('checkpointed', 0)} feeless inference(s) "
        f"credited in ProofOfUse epoch {usage.get('epoch')}"
    )
    flows = summary["flows"]
    echo("    JOY flows")
    echo(
        f"      requester paid     {joy(flows['requester_paid']):>14}   refunded {joy(flows['refunded'])}; "
        "feeless requests cost nothing"
    )
    for name, amount in flows["nodes_earned"].items():
        echo(f"      {name} earned      {joy(amount):>14}")
    governance = summary["governance"]
    echo(
        f"      model owner royalty {joy(flows['owner_royalty']):>13}   "
        f"({governance['royalty_before_bps'] / 100:g} %, {governance['royalty_after_bps'] / 100:g} % after the change)"
    )
    echo(f"      protocol share     {joy(flows['protocol_share']):>14}   (kept in the marketplace for the treasury)")
    echo(
        f"    governance: royalty {governance['royalty_before_bps']} -> {governance['royalty_after_bps']} bps "
        f"{governance['within_policy']['state']} (voter {governance['within_policy']['voter']}); the 45 % proposal "
        f"{governance['outside_policy']['state']} (voter {governance['outside_policy']['voter']})"
    )
    echo(f"    {'gas':<34} {'txs':>4} {'per tx':>10}")
    for label, gas in summary["gas"].items():
        echo(f"      {label:<32} {gas['txs']:>4} {gas['per_tx']:>10,}")
    stopped = [p for p in summary["processes"] if p["exit"] is not None]
    echo(
        f"    processes: {len(summary['processes'])} started, {len(stopped)} stopped "
        f"(exit codes {', '.join(str(p['exit']) for p in summary['processes'])}); "
        f"{len(summary['leftover_pids'])} left running"
    )
    echo(f"    done in {summary['seconds']:.1f} s")


def run_demo(plan: DemoPlan, workdir: Path | None, summary_json: Path | None, short: bool) -> dict:
    """The whole demo on the connected local chain; returns the summary. Raises ClickException
    naming the stage that failed; the agents are stopped in every case."""
    steps = Steps()
    keep = workdir is not None
    workdir = Path(workdir or tempfile.mkdtemp(prefix="joynet-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    os.environ["JOYNET_CHANNEL_DB"] = str(workdir / "channels.sqlite3")  # the ledger this demo's processes share
    demo = Demo(plan, workdir, steps)
    # Ape's own handlers would stop anvil first; these let the agents stop while it still runs.
    previous = {signum: signal.signal(signum, _interrupt) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        with steps.stage("Local chain and deployment: every role handed to the DAO"):
            demo.deploy()
        with steps.stage("Publish the built-in models to the embedded store and register them"):
            demo.publish_and_register()
        with steps.stage("Start 3 edge agents, 2 bridgers and the voter as separate processes"):
            demo.start_agents(networks.provider.uri)
        with steps.stage(f"Paid requests: {plan.digits} digits (ZK proof), {plan.minilm} MiniLM (quorum of 3)"):
            demo.paid_requests()
        with steps.stage(f"Feeless requests over the channel: {plan.feeless} digits, proofs verified by the requester"):
            demo.feeless_requests()
        with steps.stage("The bridgers checkpoint the channel on chain"):
            demo.checkpoint()
        with steps.stage("Governance: a royalty change the voter supports, through the timelock; one it defeats"):
            demo.governance()
        with steps.stage("JOY flows"):
            demo.flows()
    except BaseException as error:
        why = "Interrupted" if isinstance(error, KeyboardInterrupt) else "Failed"
        click.secho(f"\n{why}: stopping every process the demo started", bold=True, err=True)
        try:
            demo.shutdown()
        except Exception as error:  # noqa: BLE001 - the original failure is the one to report
            steps.alert(f"while stopping: {one_line(error)}")
        steps.alert(f"the run's directory (logs, store, journals) is kept: {workdir}")
        raise
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    with steps.stage("Stop every process the demo started"):
        demo.shutdown()
    summary = demo.summary()
    summary["short"] = short
    print_summary(summary, short)
    if summary_json:
        summary_json.write_text(json.dumps(summary, indent=1, default=str))
    if not keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return summary


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")
