"""``joynet credential``: a model owner's model-access credentials (``joynet.identity``).

A feeless model's owner makes it private and lets in only the holders of credentials it issued:
W3C verifiable credentials as EdDSA JWTs, signed by the owner's DID key (the Ed25519 key of its
channel identity, from a BIP-39 mnemonic). ``issue`` marks the model private on the owner's
access channel (``joynet-access:<model>``) the first time and prints a credential; ``revoke``
posts credential ids on that channel, which the nodes serving the model follow."""

from __future__ import annotations

import json
import time

import click

from joynet.cli.chain import connected
from joynet.cli.options import chain_account, chain_network
from joynet.cli.output import CommandError

DEFAULT_VALIDITY = 30 * 24 * 3600  # seconds

owner_key = click.option(
    "--mnemonic",
    envvar="JOYNET_CHANNEL_MNEMONIC",
    required=True,
    help="BIP-39 mnemonic of the owner's channel and DID key [env: JOYNET_CHANNEL_MNEMONIC]",
)
key_account = click.option(
    "--key-account", type=click.IntRange(0), default=0, show_default=True, help="the mnemonic's wallet account"
)
channel_api = click.option(
    "--channel-api",
    metavar="MULTIADDR",
    help="Kubo RPC API whose pubsub carries the channels (default: $JOYNET_CHANNEL_API, else the embedded ledger)",
)
owner_account = chain_account("the model's owner on chain")


@click.group()
def credential() -> None:
    """Model-access credentials of a private feeless model: issue and revoke them."""


@credential.command()
@click.argument("model_id", metavar="MODEL")
@click.argument("holder", metavar="HOLDER_DID")
@click.option(
    "--expires-in", type=click.IntRange(1), default=DEFAULT_VALIDITY, help="seconds it is valid [default: 30 days]"
)
@click.option("--id", "credential_id", help="the credential's id (default: a new urn:uuid:...)")
@owner_key
@key_account
@channel_api
@chain_network
@owner_account
def issue(model_id, holder, expires_in, credential_id, mnemonic, key_account, channel_api, network, account) -> None:
    """Issue HOLDER_DID a credential to use MODEL (marking MODEL private on its access channel the
    first time). Prints the credential (a JWT) with its id, issuer, holder and validity, as JSON."""
    from joynet.identity.credentials import ModelAccessPolicy, ModelAccessRegistry, key_of_did

    key_of_did(holder)  # a holder that is not a did:key is refused before anything is posted
    owner = _owner_identity(mnemonic, key_account)
    _check_owned_feeless(network, account, model_id)
    transport = _transport(channel_api)
    registry = ModelAccessRegistry(transport, owner, model_id)
    policy = ModelAccessPolicy(transport, owner.document(), model_id)
    policy.refresh()
    if not policy.private:
        registry.mark_private()
    now = int(time.time())
    token = owner.issue_model_access(
        holder, model_id, expires_at=now + expires_in, not_before=now, credential_id=credential_id
    )
    issued = _claims(token)
    click.echo(
        json.dumps(
            {
                "credential": token,
                "id": issued["jti"],
                "issuer": owner.did,
                "holder": holder,
                "model": model_id,
                "not_before": issued["nbf"],
                "expires_at": issued["exp"],
                "access_channel": registry.channel_id,
                "marked_private": not policy.private,
            }
        )
    )


@credential.command()
@click.argument("model_id", metavar="MODEL")
@click.argument("credentials", metavar="CREDENTIAL...", nargs=-1, required=True)
@owner_key
@key_account
@channel_api
@chain_network
@owner_account
def revoke(model_id, credentials, mnemonic, key_account, channel_api, network, account) -> None:
    """Revoke credentials of MODEL (each given by its id or as the JWT itself) on the owner's
    access channel; the nodes refuse them from their next check on. Prints what was revoked, as JSON."""
    from joynet.identity.credentials import ModelAccessRegistry

    owner = _owner_identity(mnemonic, key_account)
    ids = [_claims(item)["jti"] if item.count(".") == 2 else item for item in credentials]
    _check_owned_feeless(network, account, model_id)
    registry = ModelAccessRegistry(_transport(channel_api), owner, model_id)
    registry.revoke(*ids)
    click.echo(json.dumps({"model": model_id, "revoked": ids, "access_channel": registry.channel_id}))


def _owner_identity(mnemonic: str, key_account: int):
    from joynet.identity.credentials import DIDIdentity

    try:
        return DIDIdentity.from_mnemonic(mnemonic, account=key_account)
    except ValueError as error:
        raise CommandError(f"--mnemonic: {error}") from None


def _claims(token: str) -> dict:
    """The claims of a credential's JWT, unverified: only to name it (its id, its times)."""
    import jwt

    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as error:
        raise CommandError(f"{token[:24]}...: not a credential JWT ({error})") from None
    if not isinstance(claims.get("jti"), str):
        raise CommandError(f"{token[:24]}...: the credential has no id (jti)")
    return claims


def _check_owned_feeless(network: str, account: str | None, model_id: str) -> None:
    """The signing account owns ``model_id``, a feeless model (credentials gate its channel)."""
    with connected(network, account) as marketplace:
        model = marketplace.owned_model(model_id)
        if bytes(model.iotaStreamId) == bytes(32):
            raise CommandError(
                f"model {model_id!r} is a paid model: access credentials admit requesters to a feeless model's channel"
            )


def _transport(api: str | None):
    from joynet.channels import open_transport

    return open_transport(api)
