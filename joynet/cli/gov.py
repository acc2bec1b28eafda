"""``joynet gov``: the DAO's proposals (``joynet.chain.dao.ModelGovernanceDAO``): propose, vote,
queue, execute and follow them. The checks and texts are ``joynet.governance``'s (the same as
``ape run governance``): every proposed call is dry-run as the timelock first, and a command the
DAO would refuse fails with one line before anything is sent."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from joynet.cli.chain import governed
from joynet.cli.options import chain_account, chain_network, store_api
from joynet.cli.output import CommandError, run, stderr

SUPPORT = ("for", "against", "abstain")
account_option = chain_account()


@click.group()
def gov() -> None:
    """Governance: propose, vote, queue, execute and follow DAO proposals."""


def proposal_command(function):
    """A ``gov`` command on one PROPOSAL (its id, hex or decimal), with --network and --account."""
    return gov.command()(click.argument("proposal")(chain_network(account_option(function))))


@contextlib.contextmanager
def on_proposal(network: str, account: str | None, proposal: str) -> Iterator[tuple[Any, int]]:
    """The DAO client signing with ``account`` and the id of its proposal written ``proposal``
    (one-line error when there is none)."""
    from joynet.governance.proposals import existing_proposal

    with governed(network, account) as (_, dao):
        yield dao, existing_proposal(dao, proposal)


@gov.command()
@click.option("--description", required=True, help="what the proposal does and why (its id depends on it)")
@click.option(
    "--call",
    "calls",
    multiple=True,
    help='a call to a contract of the deployment, e.g. "ModelMarketplace.setFeeShares(7000, 2500, 500)"; repeatable',
)
@click.option("--target", help="the target of one call: a contract of the deployment by name, or an address")
@click.option("--signature", help="the target's function, e.g. setFeeShares(uint16,uint16,uint16); its ARGS follow")
@click.option("--calldata", metavar="0x...", help="the target's call, encoded (selector and ABI-encoded arguments)")
@click.argument("args", nargs=-1)
@chain_network
@account_option
def propose(description, calls, target, signature, calldata, args, network, account) -> None:
    """Propose calls for the timelock to make: each --call, or one --target with --signature
    and its ARGS or with --calldata. Every call is dry-run as the timelock first. Prints the
    proposal's id, calls, state and transaction as JSON."""
    from joynet.governance.circuits import refuse_bare_registration
    from joynet.governance.proposals import check_calls, parse_call, raw_call, signature_call
    from joynet.governance.voter import ContractDirectory

    if target is None and (signature or calldata or args):
        raise CommandError("--signature, --calldata and ARGS describe the call to --target: name it")
    if target is not None and (signature is None) == (calldata is None):
        raise CommandError("give --target's call as --signature 'name(type,...)' ARGS... or as --calldata 0x...")
    if calldata is not None and args:
        raise CommandError("--calldata already holds the arguments: no ARGS with it")
    if not calls and target is None:
        raise CommandError('nothing to propose: give --call "Contract.function(args)" or --target')
    with governed(network, account) as (deployment, dao):
        directory = ContractDirectory.from_deployment(deployment)
        encoded = [parse_call(text, deployment, directory) for text in calls]
        if target is not None:
            encoded.append(
                signature_call(target, signature, args, deployment)
                if signature is not None
                else raw_call(target, calldata, deployment)
            )
        refuse_bare_registration(encoded, directory)
        check_calls(encoded, deployment, directory, dao.address)
        with stderr.status("proposing"):
            proposal_id = run(
                dao.propose(
                    [call.target for call in encoded],
                    [0] * len(encoded),
                    [call.calldata for call in encoded],
                    description,
                )
            )
        calls = [{"call": str(call), "target": call.target, "calldata": "0x" + call.calldata.hex()} for call in encoded]
        _sent(dao, proposal_id, calls=calls)


@gov.command("propose-circuit")
@click.argument("directory", metavar="CEREMONY_DIR", type=click.Path(path_type=Path))
@click.option(
    "--verifier", required=True, metavar="ADDRESS", help="the deployed Solidity verifier the ceremony exported"
)
@click.option("--title", help="the description's first line [default: Register circuit <id>]")
@click.option(
    "--ptau", type=click.Path(path_type=Path), help="the powers of tau, if not where the transcript recorded it"
)
@click.option(
    "--layout",
    default="0x000102",
    show_default=True,
    help="byte i: the ZKVerifier signal at public input i (0 weights, 1 input, 2 output binding)",
)
@store_api
@chain_network
@account_option
def propose_circuit(directory, verifier, title, ptau, layout, api, network, account) -> None:
    """Propose registering the verifier of the ceremony in CEREMONY_DIR (ProofOfInference.
    registerCircuit), once the ceremony verifies and the code at --verifier carries its
    verification key. Its r1cs, powers of tau, final zkey and transcript are pinned; the
    description names the record's CID and the final zkey's sha256, which voters check. Prints
    the proposal, the circuit id and the record's CID as JSON."""
    from ape import chain
    from eth_utils import is_address, to_checksum_address

    from joynet.governance.circuits import circuit_description, publish_ceremony
    from joynet.governance.proposals import check_calls, parse_call
    from joynet.governance.voter import ContractDirectory
    from joynet.storage import open_store
    from joynet.zk.ceremony import SOLIDITY_VERIFIER, bytecode_carries_key, verify_ceremony
    from joynet.zk.errors import CeremonyError

    if not is_address(verifier):
        raise CommandError(f"--verifier {verifier!r} is not an address")
    if not (Path(directory) / SOLIDITY_VERIFIER).is_file():
        raise CommandError(f"{directory} has no {SOLIDITY_VERIFIER}: run joynet ceremony export first")
    try:
        with stderr.status("verifying the ceremony") as status:
            result = verify_ceremony(directory, ptau, progress=lambda text: status.update(text))
    except CeremonyError as error:
        raise CommandError(f"the ceremony does not verify: {error}") from None
    circuit_id = "0x" + result.circuit_id.hex()
    with governed(network, account) as (deployment, dao):
        verifier = to_checksum_address(verifier)
        if (why := bytecode_carries_key(bytes(chain.provider.get_code(verifier)), result.verification_key)) is not None:
            raise CommandError(f"the contract at {verifier} is not the ceremony's verifier: {why}")
        directory_of_contracts = ContractDirectory.from_deployment(deployment)
        call = parse_call(
            f"ProofOfInference.registerCircuit({circuit_id}, {verifier}, {layout})", deployment, directory_of_contracts
        )
        check_calls([call], deployment, directory_of_contracts, dao.address)

        async def pinning() -> str:
            async with open_store(api) as store:
                return await publish_ceremony(store, directory, result, Path(ptau or result.transcript["ptau"]["file"]))

        with stderr.status("pinning the ceremony's r1cs, powers of tau, final zkey and transcript"):
            record_cid = run(pinning())
        description = circuit_description(title or f"Register circuit {circuit_id}", record_cid, result)
        with stderr.status("proposing"):
            proposal_id = run(dao.propose([call.target], [0], [call.calldata], description))
        _sent(
            dao,
            proposal_id,
            call=str(call),
            circuit_id=circuit_id,
            transcript=record_cid,
            zkey_sha256=result.zkey_sha256,
        )


@proposal_command
@click.argument("support", type=click.Choice(SUPPORT, case_sensitive=False))
@click.option("--reason", default="", help="recorded on chain with the vote")
def vote(proposal, support, reason, network, account) -> None:
    """Vote for, against or abstain on the active PROPOSAL (its id, hex or decimal). Prints the
    vote's weight and the votes so far as JSON."""
    from joynet.chain.dao import VoteType
    from joynet.governance.proposals import check_not_voted

    with on_proposal(network, account, proposal) as (dao, proposal_id):
        check_not_voted(dao, proposal_id, proposal)
        run(dao.castVote(proposal_id, VoteType[support.capitalize()], reason))
        weight = dao.contract.getVotes(dao.account, dao.contract.proposalSnapshot(proposal_id))
        _sent(dao, proposal_id, voter=dao.account.address, support=support.lower(), weight=str(weight))
        if weight == 0:
            stderr.print("note: this account had no voting power at the proposal's snapshot (delegate first)")


@proposal_command
def queue(proposal, network, account) -> None:
    """Queue the succeeded PROPOSAL in the timelock. Prints its timelock ETA as JSON."""
    with on_proposal(network, account, proposal) as (dao, proposal_id):
        run(dao.queue(proposal_id))
        eta = dao.contract.proposalEta(proposal_id)
        _sent(dao, proposal_id, eta=eta, eta_utc=_utc(eta))


@proposal_command
def execute(proposal, network, account) -> None:
    """Execute the queued PROPOSAL once its timelock delay is over. Prints the state it left as JSON."""
    from ape import chain

    from joynet.chain.dao import ProposalState

    with on_proposal(network, account, proposal) as (dao, proposal_id):
        if dao.state(proposal_id) is ProposalState.Queued:
            eta = dao.contract.proposalEta(proposal_id)
            left = eta - chain.pending_timestamp
            if left > 0:
                raise CommandError(f"timelock: {left} s left (ETA {_utc(eta)}, chain time)")
        with stderr.status("executing"):
            run(dao.execute(proposal_id))
        _sent(dao, proposal_id)


@gov.command()
@click.argument("proposal", required=False)
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@chain_network
@account_option
def status(proposal, as_json, network, account) -> None:
    """PROPOSAL in detail (state, votes, what it waits for, the timelock's ETA), or every
    proposal with its state and time left."""
    from joynet.chain.dao import proposals as chain_proposals
    from joynet.chain.dao import seconds_per_block
    from joynet.governance import proposals, reports

    with governed(network, account, needs_account=False) as (deployment, dao):
        if not as_json:
            click.echo(reports.status_report(dao, deployment, proposal))
            return
        ids = (
            [proposals.existing_proposal(dao, proposal)]
            if proposal is not None
            else [log.proposalId for log in chain_proposals(dao.contract, deployment.start_block)]
        )
        pace = seconds_per_block()
        shown = [_status(dao, proposal_id, pace) for proposal_id in ids]
        click.echo(json.dumps(shown[0] if proposal is not None else shown))


def _status(dao, proposal_id: int, pace: float) -> dict:
    from joynet.chain.dao import ProposalState, time_left

    state = dao.state(proposal_id)
    eta = dao.contract.proposalEta(proposal_id) if state in (ProposalState.Queued, ProposalState.Executed) else None
    return {
        "proposal": hex(proposal_id),
        "state": state.name,
        "waiting": time_left(dao.contract, proposal_id, pace),
        "votes": _votes(dao, proposal_id),
        "snapshot": dao.contract.proposalSnapshot(proposal_id),
        "deadline": dao.contract.proposalDeadline(proposal_id),
        "eta": eta,
        "eta_utc": _utc(eta) if eta else None,
    }


def _sent(dao, proposal_id: int, **fields) -> None:
    """Prints, as JSON, the proposal after the transaction just sent: its id, state and votes,
    the transaction and its block, and the command's own ``fields``."""
    receipt = dao.last_receipt
    shown = {"proposal": hex(proposal_id), "state": dao.state(proposal_id).name, "votes": _votes(dao, proposal_id)}
    click.echo(json.dumps({**shown, **fields, "transaction": receipt.txn_hash, "block": receipt.block_number}))


def _votes(dao, proposal_id: int) -> dict[str, str]:
    """The votes for, against and abstaining, in JOY wei (as text: they pass 2**53)."""
    return {support: str(weight) for support, weight in dao.votes(proposal_id).items()}


def _utc(timestamp: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))
