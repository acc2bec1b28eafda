"""`ape run iota_bridger`: one member of the IOTAValidator committee, checkpointing feeless channels.

    ape run iota_bridger --network ethereum:local:foundry --test-account 7
    ape run iota_bridger --network polygon:supernet:node --account bridger1

Silverback-style: one decorated handler per event or tick, on a small agent loop of the same shape
(Silverback itself is not a dependency: it brings apepay, taskiq and more for one loop).

  * ``StreamLinked`` (IOTAValidator): follow the newly linked stream;
  * every tick: for each followed stream, co-sign the board's proposals that continue from the
    chain's head and that this bridger rebuilt identically from the channel; propose its own
    checkpoint when none is pending; submit a proposal once it holds the threshold of signatures.

Channels and the bridge board are on the embedded ledger (``$JOYNET_CHANNEL_DB``); see
``joynet.feeless.bridger`` for what is counted and how signatures meet. ``--until-caught-up`` stops once
every followed stream is checkpointed up to its last served request (for tests and cron use).
"""

import signal
import time
from collections.abc import Callable

import click
from ape import accounts, chain
from ape.cli import ConnectedProviderCommand
from ape.logging import logger
from eth_account.messages import encode_typed_data

from joynet.chain.deployment_file import load_deployment
from joynet.chain.validator import checkpoint_typed_data, ordered_signatures
from joynet.channels import SQLiteLedger
from joynet.feeless.bridger import BridgeBoard, BridgeError, build_checkpoint


class Agent:
    """The shape of a Silverback app: handlers registered per contract event and per tick."""

    def __init__(self, name: str):
        self.name = name
        self.event_handlers: list[tuple[object, Callable]] = []
        self.tick_handlers: list[Callable] = []
        self.stopped = False

    def on_event(self, event):
        def register(handler):
            self.event_handlers.append((event, handler))
            return handler
        return register

    def on_tick(self, handler):
        self.tick_handlers.append(handler)
        return handler

    def run(self, from_block: int, poll_seconds: float, max_seconds: float | None) -> None:
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        next_block = from_block
        while not self.stopped:
            head = chain.blocks.height
            for event, handler in self.event_handlers:
                for log in event.range(next_block, head + 1):
                    handler(log)
            next_block = head + 1
            for handler in self.tick_handlers:
                handler()
            if self.stopped or (deadline is not None and time.monotonic() >= deadline):
                break
            time.sleep(poll_seconds)


def say(message: str) -> None:
    click.echo(f"iota_bridger: {message}")


@click.command(cls=ConnectedProviderCommand, short_help="Checkpoint feeless IOTA channels as a bridger")
@click.option("--account", "account_alias", help="Ape account alias of this committee member")
@click.option("--test-account", type=int, help="Ape local test account index (local chains)")
@click.option("--poll-seconds", type=float, default=1.0, show_default=True)
@click.option("--max-seconds", type=float, help="Stop after this long")
@click.option("--until-caught-up", is_flag=True, help="Stop when every followed stream is checkpointed")
def cli(account_alias, test_account, poll_seconds, max_seconds, until_caught_up):
    logger.set_level("WARNING")
    if (account_alias is None) == (test_account is None):
        raise click.UsageError("give exactly one of --account ALIAS or --test-account N")
    signer = accounts.load(account_alias) if account_alias else accounts.test_accounts[test_account]
    deployment = load_deployment()
    validator = deployment.contract("IOTAValidator")
    if not validator.isCommitteeMember(signer.address):
        raise click.ClickException(f"{signer.address} is not on the IOTAValidator committee")
    ledger = SQLiteLedger()
    board = BridgeBoard(ledger, chain.chain_id, validator.address)
    streams: set[bytes] = set()
    agent = Agent("iota_bridger")
    say(f"member {signer.address}, validator {validator.address}, ledger {ledger.path}, "
        f"threshold {validator.threshold()} of {len(validator.committee())}")

    @agent.on_event(validator.StreamLinked)
    def stream_linked(log):
        stream_id = bytes(log.streamId)
        streams.add(stream_id)
        say(f"following stream 0x{stream_id.hex()} (model 0x{bytes(log.modelId).hex()[:16]}...)")

    @agent.on_tick
    def checkpoint_streams():
        caught_up = bool(streams)
        for stream_id in sorted(streams):
            caught_up &= checkpoint_stream(stream_id)
        if until_caught_up and caught_up:
            say("every followed stream is checkpointed: stopping")
            agent.stopped = True

    def sign(checkpoint) -> bytes:
        typed = encode_typed_data(full_message=checkpoint_typed_data(checkpoint, chain.chain_id, validator.address))
        return signer.sign_message(typed).encode_rsv()

    def checkpoint_stream(stream_id: bytes) -> bool:
        """One round for one stream; True when there is nothing left to checkpoint."""
        state = validator.streamOf(stream_id)
        head, has_checkpoint = bytes(state.head), state.checkpoints > 0
        try:
            mine = build_checkpoint(ledger, stream_id, state.sequence, head, has_checkpoint)
        except BridgeError as error:
            say(f"skipping: {error}")
            return True
        endorsed = False  # a pending proposal this member agrees with
        for proposal in board.proposals(stream_id, head, validator.isCommitteeMember):
            rebuilt = build_checkpoint(ledger, stream_id, state.sequence, head, has_checkpoint,
                                       up_to=proposal.checkpoint.sequence)
            if rebuilt != proposal.checkpoint:
                continue  # not what the channel says: never sign it
            endorsed = True
            if signer.address not in proposal.signatures:
                proposal.signatures[signer.address] = sign(proposal.checkpoint)
                board.post(proposal.checkpoint, signer.address, proposal.signatures[signer.address])
                say(f"co-signed checkpoint of 0x{stream_id.hex()[:16]}... up to sequence {proposal.checkpoint.sequence}")
            if len(proposal.signatures) >= validator.threshold():
                submit(proposal)
                return False
        if mine is not None and not endorsed:  # a wrong proposal by another member blocks nothing
            board.post(mine, signer.address, sign(mine))
            say(f"proposed checkpoint of 0x{stream_id.hex()[:16]}... sequence {mine.sequence}, "
                f"{mine.inferences} inferences over {len(mine.usage)} node(s)")
        return mine is None

    def submit(proposal) -> None:
        checkpoint = proposal.checkpoint
        if bytes(validator.streamOf(checkpoint.streamId).head) != checkpoint.previousHead:
            return  # another member submitted it first: the chain moved on
        signatures = ordered_signatures(list(proposal.signatures.items()))
        try:
            receipt = validator.submitCheckpoint(checkpoint, signatures, sender=signer)
        except Exception as error:  # noqa: BLE001 - a race lost to another member is not fatal
            if bytes(validator.streamOf(checkpoint.streamId).head) == checkpoint.headHash:
                return
            raise click.ClickException(f"submitCheckpoint failed: {error}") from error
        say(f"submitted checkpoint of 0x{checkpoint.streamId.hex()[:16]}... sequence {checkpoint.sequence}: "
            f"{checkpoint.inferences} inferences credited, gas {receipt.gas_used:,}")

    def stop(signum, _frame):
        say(f"{signal.Signals(signum).name} received: stopping after this round")
        agent.stopped = True

    signal.signal(signal.SIGTERM, stop)  # a supervisor's SIGTERM ends the loop cleanly (exit 0)
    signal.signal(signal.SIGINT, stop)
    agent.run(deployment.start_block, poll_seconds, max_seconds)
