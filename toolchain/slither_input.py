"""Prints the solc standard-JSON input that `make slither` compiles: every .sol file under
contracts/ (hidden folders such as Ape's contracts/.cache skipped), OpenZeppelin from node_modules,
and the EVM version and optimizer of ape-config.yaml.

Only the ASTs are asked for: Slither analyses the AST, and without bytecode solc-js does no code
generation, which is most of its time (about 5 s of CPU instead of about 23 s for these contracts).
crytic-compile reads the per-contract ABI and bytecode only when solc returns a "contracts" section,
which it does not for this output selection.

Run it with the project's Python (.venv has PyYAML); paths are relative to the project root, where
solc runs.
"""

import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def standard_input() -> dict:
    config = yaml.safe_load((ROOT / "ape-config.yaml").read_text(encoding="utf8"))
    solidity = config.get("solidity", {})
    contracts = ROOT / config.get("contracts_folder", "contracts")
    sources = sorted(
        path.relative_to(ROOT).as_posix()
        for path in contracts.rglob("*.sol")
        if not any(part.startswith(".") for part in path.relative_to(contracts).parts)
    )
    settings = {
        # Ape maps @openzeppelin/contracts to its dependency of the same npm package.
        "remappings": ["@openzeppelin/contracts/=node_modules/@openzeppelin/contracts/"],
        "optimizer": {"enabled": bool(solidity.get("optimize", True)), "runs": solidity.get("optimization_runs", 200)},
        "outputSelection": {"*": {"": ["ast"]}},
    }
    if solidity.get("evm_version"):
        settings["evmVersion"] = solidity["evm_version"]
    if solidity.get("via_ir"):
        settings["viaIR"] = True
    return {
        "language": "Solidity",
        "sources": {source: {"urls": [source]} for source in sources},
        "settings": settings,
    }


if __name__ == "__main__":
    json.dump(standard_input(), sys.stdout, indent=1)
    sys.stdout.write("\n")
