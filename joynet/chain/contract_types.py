"""The protocol's contract types (ABIs), from the checkout's compiled project or shipped with the package.

In a source checkout whose Ape project is the working directory (``ape test``, ``ape run``), the
contracts are Ape's project's, compiled from ``contracts/``. An installed package never compiles:
it reads ``contract_types.json`` next to this module, the ABIs of every contract of the project,
written by ``ape run contract_types`` and checked against the compiled project by the tests
(tests/unit/test_contract_types.py). Either way :func:`container` gives an Ape
``ContractContainer`` whose ``.at(address)`` is the contract on chain.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from joynet.chain.errors import DeploymentError
from joynet.paths import CHECKOUT

SHIPPED = Path(__file__).with_name("contract_types.json")


def container(name: str) -> Any:
    """The Ape ``ContractContainer`` of the contract type ``name`` (e.g. ``ModelMarketplaceV2``)."""
    project = _checkout_project()
    if project is not None:
        return getattr(project, name)
    from ape.contracts import ContractContainer

    types = shipped_contract_types()
    if name not in types:
        raise DeploymentError(f"no contract type {name!r} in {SHIPPED}; it has: {', '.join(sorted(types))}")
    return ContractContainer(types[name])


def all_contract_types() -> list[Any]:
    """Every contract type of the protocol (their ABIs: events, errors, functions)."""
    project = _checkout_project()
    return list(project.contracts.values()) if project is not None else list(shipped_contract_types().values())


@functools.cache
def shipped_contract_types() -> dict[str, Any]:
    """The contract types the package ships, by name (ABI only: no bytecode, nothing to deploy)."""
    from ethpm_types import ContractType

    return {name: ContractType.model_validate(data) for name, data in json.loads(SHIPPED.read_text()).items()}


def export_contract_types(project: Any) -> dict[str, dict]:
    """``project``'s contract types as the package ships them: name -> ``{contractName, sourceId, abi}``."""
    return {
        name: {
            "contractName": name,
            "sourceId": contract_type.source_id,
            "abi": [abi.model_dump(mode="json", by_alias=True, exclude_none=True) for abi in contract_type.abi],
        }
        for name, contract_type in sorted((name, project.contracts[name]) for name in project.contracts)
    }


def _checkout_project() -> Any | None:
    """Ape's project when it is this package's checkout, else None."""
    if CHECKOUT is None:
        return None
    from ape import project

    return project if Path(project.path).resolve() == CHECKOUT else None
