"""The deployment file: where clients, agents and tools find the protocol.

``scripts/deploy.py`` writes ``<deployments dir>/<network name>.json``::

    {"chain_id": 31337, "deployer": "0x...", "start_block": 1,
     "contracts": {"JoyToken": "0x...", "TimelockController": "0x...", "ModelGovernanceDAO": "0x..."}}

The directory is ``$JOYNET_DEPLOYMENTS_DIR`` (a relative path: from the checkout, or outside one
from the working directory); unset, ``deployments/`` in a source checkout, else
``$JOYNET_HOME/deployments`` (``~/.joynet/deployments``) for an installed package.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from eth_utils import to_checksum_address

from joynet.chain.errors import DeploymentError
from joynet.paths import CHECKOUT, joynet_home

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# The contract type behind each name in the deployment file, where the two differ.
CONTRACT_TYPES = {"TimelockController": "JoyTimelock", "ModelMarketplace": "ModelMarketplaceV2"}


def deployments_dir() -> Path:
    """Where deployment files are read and written (see the module's docstring)."""
    configured = os.environ.get("JOYNET_DEPLOYMENTS_DIR")
    if not configured:
        return CHECKOUT / "deployments" if CHECKOUT else joynet_home() / "deployments"
    path = Path(configured).expanduser()
    return path if path.is_absolute() else (CHECKOUT or Path.cwd()) / path


def deployment_path(network_name: str, directory: Path | None = None) -> Path:
    return (directory or deployments_dir()) / f"{network_name}.json"


@dataclass(frozen=True)
class Deployment:
    chain_id: int
    deployer: str
    contracts: dict[str, str]
    start_block: int = 0
    path: Path | None = field(default=None, compare=False)

    def address(self, name: str) -> str:
        try:
            return self.contracts[name]
        except KeyError:
            where = f" in {self.path}" if self.path else ""
            raise DeploymentError(
                f"no contract named {name!r}{where}; it has: {', '.join(sorted(self.contracts))}"
            ) from None

    def contract(self, name: str):
        """The Ape contract instance deployed under ``name`` (with its deployed type's ABI)."""
        from joynet.chain.contract_types import container

        return container(CONTRACT_TYPES.get(name, name)).at(self.address(name))

    def to_json(self) -> dict:
        return {
            "chain_id": self.chain_id,
            "deployer": self.deployer,
            "start_block": self.start_block,
            "contracts": dict(self.contracts),
        }

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf8")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Deployment:
        try:
            data = json.loads(path.read_text(encoding="utf8"))
        except FileNotFoundError:
            raise DeploymentError(f"no deployment at {path}: run `ape run deploy` on this network first") from None
        except json.JSONDecodeError as err:
            raise DeploymentError(f"{path} is not valid JSON: {err}") from None
        try:
            return cls(
                chain_id=int(data["chain_id"]),
                deployer=to_checksum_address(data["deployer"]),
                contracts={str(k): to_checksum_address(v) for k, v in data["contracts"].items()},
                start_block=int(data.get("start_block", 0)),
                path=path,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise DeploymentError(f"{path} is not a JoyNet deployment file: {err!r}") from None


def load_deployment(network_name: str | None = None, directory: Path | None = None) -> Deployment:
    """The deployment of the connected network (or of ``network_name``), checked against its chain id."""
    from ape import chain, networks

    name = network_name or networks.provider.network.name
    deployment = Deployment.load(deployment_path(name, directory))
    if network_name is None and deployment.chain_id != chain.chain_id:
        raise DeploymentError(
            f"{deployment.path} is for chain {deployment.chain_id}, but the connected chain is {chain.chain_id}"
        )
    return deployment
