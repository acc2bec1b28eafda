"""``joynet model``: publish a model package to the store, register it on chain, change its price or
metadata, deactivate it."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from pathlib import Path

import click

from joynet.cli.chain import connected
from joynet.cli.options import chain_account, chain_network, cid_version, store_api
from joynet.cli.output import CommandError, file_progress, run
from joynet.models.package import IPFS_SCHEME, load_model_metadata, publish_model
from joynet.storage import open_store

JOY_DECIMALS = 18
MAX_PRICE_WEI = (1 << 96) - 1  # the marketplace keeps prices as uint96


@click.group()
def model() -> None:
    """Model packages: publish them to the store, register them on chain, update or withdraw them."""


@model.command()
@store_api
@cid_version
@click.argument("directory", type=click.Path(path_type=Path))
def publish(api, cid_version, directory) -> None:
    """Add DIRECTORY (its files and its model.yaml or model.json); print the metadata's CID."""
    click.echo(run(_publish(api, directory, cid_version)))


async def _publish(api: str | None, directory: Path, cid_version: int) -> str:
    with file_progress("adding") as progress:
        async with open_store(api) as store:
            return await publish_model(store, directory, cid_version=cid_version, progress=progress)


@model.command("publish-builtin")
@store_api
@cid_version
def publish_builtin(api, cid_version) -> None:
    """Publish the built-in models (digits MLP, all-MiniLM-L6-v2); print {"digits": CID, "minilm": CID}."""
    from joynet.models.builtin import publish_builtin_models

    async def publishing() -> dict[str, str]:
        async with open_store(api) as store:
            return await publish_builtin_models(store, cid_version=cid_version)

    click.echo(json.dumps(run(publishing())))


@model.command()
@store_api
@click.argument("source")
@click.option("--model-id", required=True, help="the name the model is registered under")
@click.option("--price", default="0", show_default=True, help="JOY per request; 0 makes the model feeless")
@click.option("--stream", metavar="0x...", help="a feeless model's channel id (needed at price 0)")
@click.option(
    "--response-window", type=click.IntRange(0), default=0, help="seconds its nodes need at least (0: the network's)"
)
@chain_network
@chain_account()
def register(api, source, model_id, price, stream, response_window, network, account) -> None:
    """Register the model SOURCE (a metadata CID or ipfs:// URI, or a model directory, which is
    published first) on chain under MODEL_ID, with the weights commitment and the verification
    policy its metadata declares. Prints the registration as JSON."""
    price_wei = joy_to_wei(price, "--price")
    if price_wei == 0 and not stream:
        raise CommandError("a model at price 0 is feeless: name its channel with --stream 0x...")
    cid, metadata = run(_metadata_of(api, source))
    with connected(network, account) as marketplace:
        key = run(
            marketplace.register_model(
                model_id,
                IPFS_SCHEME + cid,
                price=price_wei,
                iota_stream_id=stream,
                weights_commitment=metadata["weightsCommitment"],
                quorum=metadata["verification"]["quorum"],
                circuit_id=metadata["verification"].get("circuitId"),
                response_window=response_window,
                tolerant=metadata["verification"].get("tolerant", False),
            )
        )
        registration = {
            "modelId": model_id,
            "key": "0x" + key.hex(),
            "metadataURI": IPFS_SCHEME + cid,
            "price": str(price_wei),
            "owner": marketplace.account.address,
            "transaction": marketplace.last_receipt.txn_hash,
            "block": marketplace.last_receipt.block_number,
        }
    click.echo(json.dumps(registration))


@model.command()
@store_api
@click.argument("model_id", metavar="MODEL")
@click.option("--price", metavar="JOY", help="the new price per request (0 only for a feeless model)")
@click.option("--metadata", "source", help="new metadata: a CID or ipfs:// URI, or a model directory (published first)")
@chain_network
@chain_account("the model's owner")
def update(api, model_id, price, source, network, account) -> None:
    """Change what the owner of MODEL may change: its price and its metadata. The weights
    commitment and the verification policy stay those it was registered with (register a new
    model to change them). Prints the model as it now stands, as JSON."""
    if price is None and source is None:
        raise CommandError("nothing to update: give --price JOY and/or --metadata SOURCE")
    price_wei = joy_to_wei(price, "--price") if price is not None else None
    with connected(network, account) as marketplace:
        registered = marketplace.owned_model(model_id)  # refused before anything is published or sent
        transactions = []
        if source is not None:
            cid, metadata = run(_metadata_of(api, source))
            weights = "0x" + bytes(registered.weightsCommitment).hex()
            if str(metadata["weightsCommitment"]).lower() != weights:
                raise CommandError(
                    f"the new metadata's weightsCommitment {metadata['weightsCommitment']} is not the registered "
                    f"{weights}: nodes would refuse its weights; register it as a new model instead"
                )
            run(marketplace.update_metadata(model_id, IPFS_SCHEME + cid))
            transactions.append(marketplace.last_receipt.txn_hash)
        if price_wei is not None:
            run(marketplace.update_price(model_id, price_wei))
            transactions.append(marketplace.last_receipt.txn_hash)
        click.echo(json.dumps({**_model_json(marketplace, model_id), "transactions": transactions}))


@model.command()
@click.argument("model_id", metavar="MODEL")
@chain_network
@chain_account("the model's owner")
def deactivate(model_id, network, account) -> None:
    """Withdraw MODEL from the marketplace for good: no new request is accepted, open ones
    still complete. Prints the model as it now stands, as JSON."""
    with connected(network, account) as marketplace:
        run(marketplace.deactivate_model(model_id))
        click.echo(
            json.dumps({**_model_json(marketplace, model_id), "transactions": [marketplace.last_receipt.txn_hash]})
        )


def _model_json(marketplace, model_id: str) -> dict:
    """The registered model as JSON: its key, owner, price (wei), metadata URI and whether active."""
    from joynet.chain.marketplace import model_key

    entry = marketplace.get_model(model_id)
    return {
        "modelId": model_id,
        "key": "0x" + model_key(model_id).hex(),
        "owner": entry.owner,
        "price": str(entry.price),
        "metadataURI": entry.metadataURI,
        "active": bool(entry.active),
    }


async def _metadata_of(api: str | None, source: str) -> tuple[str, dict]:
    """The metadata CID and document of SOURCE, publishing it first when it is a directory."""
    async with open_store(api) as store:
        if Path(source).is_dir():
            with file_progress("adding") as progress:
                cid = await publish_model(store, source, progress=progress)
        else:
            cid = source.removeprefix(IPFS_SCHEME)
        return cid, await load_model_metadata(store, cid)


def joy_to_wei(amount: str, option: str) -> int:
    """A JOY amount given to ``option`` (a decimal number) in wei."""
    try:
        wei = Decimal(amount).scaleb(JOY_DECIMALS)
    except InvalidOperation:
        raise CommandError(f"{option} {amount!r} is not a number of JOY") from None
    if not wei.is_finite() or wei != wei.to_integral_value() or not 0 <= wei <= MAX_PRICE_WEI:
        raise CommandError(f"{option} {amount!r}: a JOY amount from 0 with at most {JOY_DECIMALS} decimals")
    return int(wei)
