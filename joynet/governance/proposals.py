"""What ``ape run governance`` (``scripts/governance.py``) is made of: accounts and the DAO client,
proposed calls written as ``Contract.function(arg, ...)``, a dry run of each call as the timelock,
the proposal a command names (the time left of a proposal is ``joynet.chain.dao.time_left``). What the command
prints is ``joynet.governance.reports``.

    ape run governance propose --account test:1 --description "Royalty 25 %" \\
        --call "ModelMarketplace.setFeeShares(7000, 2500, 500)"
    ape run governance vote 0x1234... for --reason "fair to owners" --account test:2
    ape run governance queue 0x1234... --account test:1
    ape run governance execute 0x1234... --account test:1
    ape run governance status [0x1234...]
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import function_signature_to_4byte_selector, is_address, to_checksum_address

from joynet.chain.accounts import signing_account
from joynet.chain.dao import GovernanceError, ModelGovernanceDAO
from joynet.chain.deployment_file import load_deployment
from joynet.governance.circuits import refuse_bare_registration
from joynet.governance.errors import AlreadyVoted, CallWouldRevert, UnknownProposal
from joynet.governance.voter import ContractDirectory, DecodedCall, show_value

CALL_PATTERN = re.compile(r"^\s*(\w+)\.(\w+)\s*\((.*)\)\s*$", re.DOTALL)
HEX_TOKEN = re.compile(r"(?<![\w'\"])(0x[0-9a-fA-F]+)")


def dao_client(account_spec: str | None = None, needs_account: bool = True) -> tuple[Any, ModelGovernanceDAO]:
    """The connected network's deployment and a DAO client on it, signing with the account
    ``account_spec`` names (see ``signing_account``) unless ``needs_account`` is False."""
    deployment = load_deployment()
    account = signing_account(account_spec) if needs_account else None
    return deployment, ModelGovernanceDAO(deployment.address("ModelGovernanceDAO"), account=account)


# ---- proposed calls ----


@dataclass(frozen=True)
class EncodedCall(DecodedCall):
    target: str = ""
    calldata: bytes = b""


def parse_call(text: str, deployment, directory: ContractDirectory) -> EncodedCall:
    """``"ModelMarketplace.setFeeShares(7000, 2500, 500)"`` -> the target and calldata, with a
    readable GovernanceError for an unknown contract or function, a wrong argument count, or a
    value its ABI type cannot hold."""
    match = CALL_PATTERN.match(text)
    if not match:
        raise GovernanceError(f"cannot read call {text!r}: write it as Contract.function(arg, ...)")
    contract, function, raw_args = match.groups()
    if contract not in deployment.contracts:
        raise GovernanceError(
            f"unknown contract {contract!r}; the deployment has: {', '.join(sorted(deployment.contracts))}"
        )
    functions = directory.functions(contract)
    if function not in functions:
        raise GovernanceError(f"{contract} has no function {function!r}; its functions: {', '.join(sorted(functions))}")
    method = functions[function]
    signature = ", ".join(f"{arg.canonical_type} {arg.name}" for arg in method.inputs)
    try:
        # Hex literals stay strings (an address or bytes32 is not a number); each type converts.
        values = ast.literal_eval("[" + HEX_TOKEN.sub(r"'\1'", raw_args) + "]") if raw_args.strip() else []
    except (ValueError, SyntaxError):
        raise GovernanceError(f"cannot read the arguments of {contract}.{function}: {raw_args!r}") from None
    if len(values) != len(method.inputs):
        raise GovernanceError(
            f"{contract}.{function} takes {len(method.inputs)} argument(s) ({signature}), got {len(values)}"
        )
    converted = {
        arg.name: _convert(value, arg.canonical_type, f"{contract}.{function} argument {arg.name}")
        for arg, value in zip(method.inputs, values, strict=False)
    }
    types = [arg.canonical_type for arg in method.inputs]
    calldata = function_signature_to_4byte_selector(method.selector) + abi_encode(types, list(converted.values()))
    return EncodedCall(contract, function, converted, deployment.address(contract), calldata)


SIGNATURE_PATTERN = re.compile(r"^\s*(\w+)\s*\(([\w\[\],\s]*)\)\s*$")


def signature_call(target: str, signature: str, args: Sequence[str], deployment) -> EncodedCall:
    """A call given as a target (a contract of the deployment by name, or an address), a function
    signature ``name(type,...)`` and its arguments as text (numbers, 0x-hex, true/false, strings;
    lists as ``[1,2]``); a readable GovernanceError for a bad signature or argument."""
    match = SIGNATURE_PATTERN.match(signature)
    if not match:
        raise GovernanceError(
            f"cannot read signature {signature!r}: write it as name(type,...), e.g. setFeeShares(uint16,uint16,uint16)"
        )
    function, raw_types = match.groups()
    types = [abi_type.strip() for abi_type in raw_types.split(",") if abi_type.strip()]
    if len(args) != len(types):
        raise GovernanceError(f"{signature} takes {len(types)} argument(s), got {len(args)}")
    where = f"{function}"
    values = [
        _convert(_literal(text, abi_type), abi_type, f"{where} argument {index}")
        for index, (text, abi_type) in enumerate(zip(args, types, strict=True))
    ]
    canonical = f"{function}({','.join(types)})"
    try:
        calldata = function_signature_to_4byte_selector(canonical) + abi_encode(types, values)
    except Exception as error:  # eth_abi raises several kinds for a type it does not know
        raise GovernanceError(f"cannot encode {canonical}: {error}") from None
    name, address = _target(target, deployment)
    return EncodedCall(name, function, {f"arg{index}": value for index, value in enumerate(values)}, address, calldata)


def raw_call(target: str, calldata: str, deployment) -> EncodedCall:
    """A call given as a target (a contract of the deployment by name, or an address) and its
    encoded calldata (0x-hex: the selector and the ABI-encoded arguments)."""
    try:
        data = bytes.fromhex(calldata.removeprefix("0x"))
    except ValueError:
        raise GovernanceError(f"--calldata {calldata!r} is not 0x-hex") from None
    if len(data) < 4:
        raise GovernanceError(f"--calldata {calldata!r} has no 4-byte function selector")
    name, address = _target(target, deployment)
    return EncodedCall(name, f"0x{data[:4].hex()}", {}, address, data)


def _target(target: str, deployment) -> tuple[str, str]:
    """(the deployment's name of the contract, or its address; its address) of ``target``."""
    if target in deployment.contracts:
        return target, deployment.address(target)
    if not is_address(target):
        raise GovernanceError(
            f"target {target!r} is neither an address nor a contract of the deployment "
            f"({', '.join(sorted(deployment.contracts))})"
        )
    address = to_checksum_address(target)
    names = [name for name, known in deployment.contracts.items() if known == address]
    return (names[0] if names else address), address


def _literal(text: str, abi_type: str) -> Any:
    """A command-line argument as ``parse_call`` reads one (hex stays text), strings as given."""
    if abi_type == "string":
        return text
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return ast.literal_eval(HEX_TOKEN.sub(r"'\1'", text))
    except (ValueError, SyntaxError):
        return text


def _convert(value: Any, abi_type: str, where: str) -> Any:
    if abi_type.endswith("[]"):
        if not isinstance(value, (list, tuple)):
            raise GovernanceError(f"{where}: expected a list for {abi_type}, got {value!r}")
        return [_convert(item, abi_type[:-2], where) for item in value]
    if abi_type.startswith(("uint", "int")):
        number = value
        if isinstance(value, str):
            try:
                number = int(value, 0)
            except ValueError:
                raise GovernanceError(f"{where}: {value!r} is not a number") from None
        if not isinstance(number, int) or isinstance(number, bool):
            raise GovernanceError(f"{where}: {value!r} is not a number")
        bits = int(re.sub(r"^u?int", "", abi_type) or 256)
        low, high = (0, 2**bits - 1) if abi_type.startswith("uint") else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
        if not low <= number <= high:
            raise GovernanceError(f"{where}: {number} is out of range for {abi_type} ({low:,} to {high:,})")
        return number
    if abi_type == "address":
        if not isinstance(value, str) or not is_address(value):
            raise GovernanceError(f"{where}: {value!r} is not an address")
        return to_checksum_address(value)
    if abi_type == "bool":
        if not isinstance(value, bool):
            raise GovernanceError(f"{where}: expected True or False, got {value!r}")
        return value
    if abi_type.startswith("bytes"):
        if not isinstance(value, str) or not value.startswith("0x"):
            raise GovernanceError(f"{where}: expected 0x-hex bytes for {abi_type}, got {value!r}")
        data = bytes.fromhex(value[2:])
        size = abi_type.removeprefix("bytes")
        if size and len(data) != int(size):
            raise GovernanceError(f"{where}: {abi_type} needs {size} bytes, got {len(data)}")
        return data
    if abi_type == "string":
        return str(value)
    raise GovernanceError(f"{where}: arguments of type {abi_type} are not supported by this command")


def dry_run(call: EncodedCall, timelock: str, governor: str, directory: ContractDirectory) -> str | None:
    """Simulates the call as the timelock (which will make it). Returns the revert, readable, or
    None when it would succeed. Calls to the governor itself cannot be simulated (it accepts
    them only in the middle of its own execute) and are not."""
    from ape import networks
    from web3.exceptions import ContractCustomError, ContractLogicError

    if call.target == to_checksum_address(governor):
        return None
    try:
        networks.provider.web3.eth.call({"from": timelock, "to": call.target, "data": call.calldata})
    except ContractCustomError as err:
        return _decode_error(err.data, call.contract, directory)
    except ContractLogicError as err:
        return str(err.message or err)
    return None


def check_calls(calls: list[EncodedCall], deployment, directory: ContractDirectory, governor: str) -> list[EncodedCall]:
    """``calls``, once each passes its dry run as the deployment's timelock; raises
    CallWouldRevert for the first call that would revert."""
    timelock = deployment.address("TimelockController")
    for call in calls:
        if (revert := dry_run(call, timelock, governor, directory)) is not None:
            raise CallWouldRevert(f"{call} would revert when the timelock executes it: {revert}")
    return calls


async def propose_checked(
    dao: ModelGovernanceDAO, deployment, texts, description: str
) -> tuple[int, list[EncodedCall]]:
    """Proposes the calls written as ``texts`` once each is parsed and passes its dry run
    (``check_calls``), unless one registers a circuit (that goes through ``joynet gov
    propose-circuit``, with its transcript); returns the proposal's id and the calls."""
    directory = ContractDirectory.from_deployment(deployment)
    calls = [parse_call(text, deployment, directory) for text in texts]
    refuse_bare_registration(calls, directory)
    calls = check_calls(calls, deployment, directory, dao.address)
    targets, calldata = [call.target for call in calls], [call.calldata for call in calls]
    return await dao.propose(targets, [0] * len(calls), calldata, description), calls


def _decode_error(data: Any, contract: str, directory: ContractDirectory) -> str:
    from eth_abi import decode as abi_decode

    raw = bytes.fromhex(data[2:]) if isinstance(data, str) else bytes(data)
    if contract not in directory.names:  # a target outside the deployment: its errors are unknown
        return f"custom error 0x{raw[:4].hex()}"
    for error in directory.contract_type(contract).errors:
        if function_signature_to_4byte_selector(error.selector) == raw[:4]:
            values = abi_decode([arg.canonical_type for arg in error.inputs], raw[4:])
            shown = ", ".join(
                f"{arg.name}={show_value(value)}" for arg, value in zip(error.inputs, values, strict=False)
            )
            return f"{error.name}({shown})"
    return f"custom error 0x{raw[:4].hex()}"


# ---- proposal ids and states ----


def parse_proposal_id(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise GovernanceError(f"{text!r} is not a proposal id (a number, decimal or 0x-hex)") from None


def existing_proposal(dao, text: str) -> int:
    """The id written as ``text`` (hex or decimal) of a proposal the DAO client ``dao`` has;
    raises UnknownProposal when it has none by that id."""
    proposal_id = parse_proposal_id(text)
    if dao.contract.proposalSnapshot(proposal_id) == 0:
        raise UnknownProposal(f"no proposal {text} on this DAO (ape run governance status lists them)")
    return proposal_id


def check_not_voted(dao, proposal_id: int, text: str) -> None:
    """Raises AlreadyVoted when the DAO client's account has voted on the proposal (``text``
    as the proposal was written)."""
    if dao.contract.hasVoted(proposal_id, dao.account):
        raise AlreadyVoted(f"{dao.account.address} has already voted on proposal {text}")
