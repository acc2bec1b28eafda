"""Helpers shared by the test modules: revert and refusal assertions, EIP-2612 permit signatures."""

import re
from contextlib import contextmanager

import ape
import pytest
from ape.exceptions import CustomError
from eth_utils import keccak

from joynet.chain.eip712 import sign_typed, typed_message
from joynet.chain.errors import TransactionRefusedError

_REVERT_DATA = re.compile(r"^(?:custom error )?0x([0-9a-fA-F]{8})([0-9a-fA-F]*)")


class Revert:
    """What ``reverts_with`` saw: the error name and, when Ape left it undecoded, its raw data."""

    name: str = ""
    data: bytes = b""


def _error_selectors(abi_source, error_names) -> set[str]:
    selectors = set()
    for error in abi_source.contract_type.errors:
        if error.name in error_names:
            selectors.add(keccak(text=error.selector)[:4].hex())
    missing = set(error_names) - {e.name for e in abi_source.contract_type.errors}
    assert not missing, f"{abi_source.contract_type.name} declares no error named {sorted(missing)}"
    return selectors


@contextmanager
def refused_with(*error_names, account, sent=0):
    """A client transaction its dry run refused with one of the named custom errors: raised as
    TransactionRefusedError, and not sent (``account`` sent only the ``sent`` transactions the
    block makes before the refused one)."""
    nonce = account.nonce + sent
    with pytest.raises(TransactionRefusedError) as info:
        yield info
    assert info.value.error in error_names, f"expected one of {error_names}, got {info.value}"
    assert account.nonce == nonce, "the refused transaction was sent"


@contextmanager
def reverts_with(*error_names, abi=None, **inputs):
    """``ape.reverts()`` that insists on one of the named custom errors.

    ``ape.reverts(SomeCustomError)`` alone lets a revert that Ape did not decode as a custom
    error pass (no data, a panic, a string, a constructor's or an eth_call's revert), and only
    compares the error class when it comes from a contract *instance*, so the name is checked
    here explicitly. Reverts Ape leaves undecoded (deployments, view calls) are matched by the
    4-byte selector of the named errors, looked up in ``abi`` (a contract or container).
    ``inputs`` are arguments the decoded error must carry (by name).
    """
    seen = Revert()
    with ape.reverts() as info:
        yield seen
    error = info.value
    if isinstance(error, CustomError):
        seen.name = type(error).__name__
        assert seen.name in error_names, f"expected one of {error_names}, got {error!r}"
        for name, value in inputs.items():
            assert error.inputs[name] == value, f"{seen.name}: {name} = {error.inputs[name]!r}, expected {value!r}"
        return
    assert not inputs, f"{error!r} was not decoded: its inputs cannot be checked"
    assert abi is not None, f"expected one of {error_names}, got undecoded {error!r}: pass abi= to match it"
    match = _REVERT_DATA.match(str(getattr(error, "revert_message", "") or error.message))
    assert match, f"expected one of {error_names}, got {error!r}"
    assert match.group(1).lower() in _error_selectors(abi, error_names), f"expected one of {error_names}, got {error!r}"
    seen.name = next(n for n in error_names if n in {e.name for e in abi.contract_type.errors})
    seen.data = bytes.fromhex(match.group(1) + match.group(2))


def permit_signature(token, owner, spender, value, deadline, nonce=None, chain_id=None):
    """(v, r, s) of an EIP-2612 permit signed by ``owner`` (a test account with a private key)."""
    typed = typed_message(
        "Permit",
        {
            "Permit": [
                {"name": "owner", "type": "address"},
                {"name": "spender", "type": "address"},
                {"name": "value", "type": "uint256"},
                {"name": "nonce", "type": "uint256"},
                {"name": "deadline", "type": "uint256"},
            ]
        },
        (token.name(), "1", chain_id if chain_id is not None else ape.chain.chain_id, token.address),
        {
            "owner": owner.address,
            "spender": spender.address,
            "value": value,
            "nonce": token.nonces(owner) if nonce is None else nonce,
            "deadline": deadline,
        },
    )
    signed = sign_typed(owner.private_key, typed)
    return signed.v, signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big")
