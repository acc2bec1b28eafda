"""``joynet request``: one paid inference, from the signing account's deposited balance to the
checked output and its receipt. What it does on chain and in the store is the gateway's
(``joynet.gateway.service.InferenceService``): the same request, wait and checks."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click

from joynet.cli.chain import connected
from joynet.cli.model import joy_to_wei
from joynet.cli.options import chain_account, chain_network, deposit, settle_timeout, store_api
from joynet.cli.output import CommandError, run, stderr


@click.command()
@store_api
@click.argument("model_id", metavar="MODEL")
@click.option(
    "--input",
    "input_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="the input document (JSON) the model's inputSchema describes",
)
@click.option("--text", help='a text input: the document {"text": TEXT} (MiniLM, language models)')
@deposit("the account's")
@settle_timeout("--timeout", 300.0, "the command gives up waiting (the request stands on chain)")
@chain_network
@chain_account("the paying account")
def request(api, model_id, input_file, text, deposit, timeout, network, account) -> None:
    """Request an inference of MODEL on an input, paid from the account's deposited balance; wait
    until it settles, fetch the output from the store and check it against the chain. Prints
    {"output": ..., "receipt": ...} as JSON; progress goes to stderr."""
    if (input_file is None) == (text is None):
        raise CommandError("give the input: --input FILE (a JSON document) or --text TEXT")
    document = {"text": text} if text is not None else _read_document(input_file)
    deposit_wei = joy_to_wei(deposit, "--deposit") if deposit else 0
    with connected(network, account) as marketplace:
        click.echo(json.dumps(run(_request(marketplace, api, model_id, document, deposit_wei, timeout))))


def _read_document(path: Path) -> dict:
    try:
        document = json.loads(path.read_text(encoding="utf8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise CommandError(f"{path}: not a JSON document ({error})") from None
    if not isinstance(document, dict):
        raise CommandError(f"{path}: the input must be a JSON object")
    return document


async def _request(marketplace, api, model_id: str, document: dict, deposit_wei: int, timeout: float) -> dict:
    from joynet.edge.edge_node import format_joy
    from joynet.gateway import GatewaySettings
    from joynet.gateway.errors import ModelNotFoundError, SettlementTimeoutError
    from joynet.gateway.service import InferenceService
    from joynet.inference.inputs import digits_input
    from joynet.storage import open_store

    # Reads here may wait for the chain as long as it takes: a person, not an HTTP client, waits.
    settings = GatewaySettings(models=[model_id], settle_timeout=timeout, chain_timeout=60)
    async with open_store(api) as store:
        service = InferenceService(marketplace, store, settings)
        try:
            model = await service.model(model_id)
        except ModelNotFoundError:
            raise CommandError(
                f"unknown model {model_id!r}: no model by that name is registered on this chain"
            ) from None
        if not model.active:
            raise CommandError(f"model {model_id!r} was deactivated by its owner: it takes no new requests")
        if model.price == 0 and not model.feeless:
            raise CommandError(f"model {model_id!r} has price 0 and no channel: it takes no requests")
        if model.zk and "salt" not in document and "pixels" in document:
            document = digits_input(document["pixels"])  # the circuit's input commitment needs a salt
        service.check_input(model, document)  # refused before anything is deposited
        if model.feeless:
            with stderr.status(f"asking {model_id} over its channel {model.channel_id}"):
                answered = await service.ask_channel(model, document)
            stderr.print(f"answered by {', '.join(answered.receipt['nodes'])} over the channel: nothing paid")
            return {
                "output": answered.output,
                "receipt": {**answered.receipt, "verified_by": _verified_by(marketplace, answered)},
            }
        await service.check_capacity(model)
        await _pay_from_balance(marketplace, model, deposit_wei)
        with stderr.status(f"requesting {model_id}") as status:
            submitted = await service.submit(model, document)
            request_id = submitted.request_id
            stderr.print(f"submitted request {request_id} ({format_joy(model.price)} JOY from the balance)")
            status.update(f"request {request_id}: waiting for its node(s)")

            def assigned(nodes: list[str]) -> None:
                stderr.print(f"assigned request {request_id} to {', '.join(nodes)}")
                status.update(f"request {request_id}: computing on {len(nodes)} node(s)")

            try:
                result = await service.closed(request_id, model, on_assigned=assigned)
            except SettlementTimeoutError:
                raise CommandError(
                    f"request {request_id} is still open after {timeout:.0f} s; it stands on chain, and is "
                    "refunded if its deadline passes unanswered"
                ) from None
            stderr.print(
                f"{result.status.name.lower()} request {request_id} in block {result.block_number}"
                + (f" by {', '.join(result.nodes)}" if result.nodes else "")
            )
            status.update(f"request {request_id}: fetching and checking the output")
            settlement = await service.settlement(model, result, submitted)
    receipt = {**settlement.receipt, "verified_by": _verified_by(marketplace, settlement)}
    return {"output": settlement.output, "receipt": receipt}


async def _pay_from_balance(marketplace, model, deposit_wei: int) -> None:
    """Deposits ``deposit_wei`` first (if any); then the balance must cover the model's price."""
    from joynet.edge.edge_node import format_joy

    if deposit_wei:
        with stderr.status(f"depositing {format_joy(deposit_wei)} JOY"):
            await marketplace.deposit(deposit_wei)
        stderr.print(f"deposited {format_joy(deposit_wei)} JOY (tx {marketplace.last_receipt.txn_hash})")
    owner = marketplace.account.address
    balance = await asyncio.to_thread(marketplace.read, marketplace.contract.balances, owner)
    if balance < model.price:
        raise CommandError(
            f"no deposit: {owner} has {format_joy(balance)} JOY deposited, below the price "
            f"{format_joy(model.price)} JOY of {model.name!r}: add --deposit JOY"
        )


def _verified_by(marketplace, settlement) -> dict:
    """Who checked the output, by the model's policy, and what this command checked itself."""
    model, nodes = settlement.model, settlement.receipt["nodes"]
    if model.feeless:
        return {
            "chain": f"the feeless bridge binds the answer's signing key to node {nodes[0]} for this model",
            "nodes": nodes,
            "requester": "the answer's output commits to the commitment it carries"
            + (", and its proof verified here (snarkjs)" if settlement.receipt["proof_verified"] else ""),
        }
    if model.zk:
        chain_check = (
            f"the marketplace {marketplace.address} settled only on a valid proof of circuit "
            f"0x{model.circuit_id.hex()} binding the input commitment and the output"
        )
    elif model.tolerant:
        chain_check = f"node {nodes[0]} generated it and {len(nodes) - 1} validator node(s) accepted it"
    else:
        chain_check = f"{len(nodes)} node(s) committed to the same output commitment"
    return {
        "chain": chain_check,
        "nodes": list(nodes),
        "requester": "the fetched output document carries the output commitment the chain settled",
    }
