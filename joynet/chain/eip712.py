"""EIP-712 messages for JoyNet's contracts (OpenZeppelin EIP712 domains: name, version, chain
id, verifying contract) and their signatures."""

from __future__ import annotations

from eth_account import Account
from eth_account.messages import encode_typed_data

DOMAIN_TYPE = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]


def typed_message(primary_type: str, types: dict, domain: tuple[str, str, int, str], message: dict) -> dict:
    """The full EIP-712 message; ``domain`` is (name, version, chain id, verifying contract)."""
    name, version, chain_id, contract = domain
    return {
        "types": {"EIP712Domain": DOMAIN_TYPE, **types},
        "primaryType": primary_type,
        "domain": {"name": name, "version": version, "chainId": chain_id, "verifyingContract": contract},
        "message": message,
    }


def sign_typed(private_key, typed: dict):
    """eth_account's SignedMessage of ``typed`` by ``private_key``."""
    return Account.sign_message(encode_typed_data(full_message=typed), private_key)
