"""Deploy the JoyNet protocol and hand every power in it to the DAO.

Used by ``ape run deploy`` (``scripts/deploy.py``), by the demo and by the test fixtures, so
that all three build the protocol the same way. The order matters:

0. the configuration is checked against the chain before any transaction: the governance
   delays against the contracts' floors for this chain id, and, outside local development
   chains, that no single genesis holder can reach the quorum alone (``check_deploy_config``);
1. ``JoyTimelock`` with the deployer as temporary admin (the DAO does not exist yet);
2. ``JoyToken``, minting the genesis allocations (the treasury share to the timelock);
3. ``ModelGovernanceDAO`` in front of the timelock;
4. the DAO becomes the timelock's only proposer and canceller, anyone may execute;
5. the deployer renounces the timelock's admin role;
6. the marketplace core (NodeCoordinator, ProofOfInference with its ZKVerifier circuit registry and
   the digits circuit registered, ProofOfUse, ModelMarketplaceV2, IOTAValidator) with the deployer as owner, wired together, then every ownership handed
   to the timelock:
   from here on only proposals change anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from eth_utils import to_checksum_address

from joynet.chain.constants import ZERO_ADDRESS, is_local_chain
from joynet.chain.deployment_file import PROJECT_ROOT, Deployment
from joynet.chain.errors import DeployConfigError
from joynet.zk.prover import ZK_VERIFIER_LAYOUT, circuit_id

JOY = 10**18
DEFAULT_CONFIG_PATH = PROJECT_ROOT / "deploy-config.yaml"


# Chain ids of local development chains (anvil and hardhat, ganache and geth --dev): the only ones
# on which the governance contracts accept their short floors (contracts/governance/JoyChains.sol)
# and on which one genesis holder may reach the quorum alone (tests and demos need that).


@dataclass(frozen=True)
class GovernanceFloors:
    """The shortest governance delays the contracts accept on a chain."""

    timelock_delay_seconds: int  # JoyTimelock.minDelayFloor()
    voting_delay_blocks: int  # ModelGovernanceDAO.minVotingDelay()
    voting_period_blocks: int  # ModelGovernanceDAO.minVotingPeriod()


# The contracts' *_LOCAL and *_PRODUCTION constants (the tests compare the two).
LOCAL_FLOORS = GovernanceFloors(timelock_delay_seconds=60, voting_delay_blocks=0, voting_period_blocks=10)
PRODUCTION_FLOORS = GovernanceFloors(
    timelock_delay_seconds=2 * 86_400,  # 2 days
    voting_delay_blocks=21_600,  # 12 hours of 2-second blocks
    voting_period_blocks=129_600,  # 3 days of 2-second blocks
)


def governance_floors(chain_id: int) -> GovernanceFloors:
    return LOCAL_FLOORS if is_local_chain(chain_id) else PRODUCTION_FLOORS


@dataclass(frozen=True)
class Allocation:
    to: str  # "treasury", "deployer", "test_accounts" or an address
    amount: int  # whole JOY


@dataclass(frozen=True)
class GovernanceConfig:
    voting_delay_blocks: int
    voting_period_blocks: int
    proposal_threshold: int  # whole JOY
    quorum_percent: int
    timelock_delay_seconds: int


@dataclass(frozen=True)
class MarketplaceConfig:
    node_share_bps: int
    owner_share_bps: int
    protocol_share_bps: int
    max_deadline_window_seconds: int
    min_response_window_seconds: int
    reveal_window_seconds: int


@dataclass(frozen=True)
class NodesConfig:
    min_stake: int  # whole JOY
    task_bond: int  # whole JOY
    unbonding_delay_seconds: int
    max_missed_deadlines: int
    slash_requester_share_bps: int
    lease_blocks: int


@dataclass(frozen=True)
class UsageConfig:
    epoch_length_seconds: int
    owner_share_bps: int


@dataclass(frozen=True)
class BridgeConfig:
    committee: tuple[str, ...]  # "test_account:N" (local chains) or addresses
    threshold: int


@dataclass(frozen=True)
class DeployConfig:
    token_name: str
    token_symbol: str
    allocations: tuple[Allocation, ...]
    governance: GovernanceConfig
    marketplace: MarketplaceConfig
    nodes: NodesConfig
    usage: UsageConfig
    bridge: BridgeConfig

    @classmethod
    def from_mapping(cls, network: str, data: Any) -> DeployConfig:
        where = f"deploy configuration for network {network!r}"
        if not isinstance(data, dict):
            raise DeployConfigError(f"{where}: expected a mapping")
        try:
            token = data["token"]
            allocations = tuple(
                Allocation(to=str(item["to"]), amount=int(item["amount"])) for item in data["allocations"]
            )
            gov = data["governance"]
            governance = GovernanceConfig(
                voting_delay_blocks=int(gov["voting_delay_blocks"]),
                voting_period_blocks=int(gov["voting_period_blocks"]),
                proposal_threshold=int(gov["proposal_threshold"]),
                quorum_percent=int(gov["quorum_percent"]),
                timelock_delay_seconds=int(gov["timelock_delay_seconds"]),
            )
            market, nodes, usage, bridge = data["marketplace"], data["nodes"], data["usage"], data["bridge"]
            shares = market["fee_shares_bps"]
            config = cls(
                str(token["name"]),
                str(token["symbol"]),
                allocations,
                governance,
                MarketplaceConfig(
                    node_share_bps=int(shares["node"]),
                    owner_share_bps=int(shares["owner"]),
                    protocol_share_bps=int(shares["protocol"]),
                    max_deadline_window_seconds=int(market["max_deadline_window_seconds"]),
                    min_response_window_seconds=int(market["min_response_window_seconds"]),
                    reveal_window_seconds=int(market["reveal_window_seconds"]),
                ),
                NodesConfig(
                    min_stake=int(nodes["min_stake"]),
                    task_bond=int(nodes["task_bond"]),
                    unbonding_delay_seconds=int(nodes["unbonding_delay_seconds"]),
                    max_missed_deadlines=int(nodes["max_missed_deadlines"]),
                    slash_requester_share_bps=int(nodes["slash_requester_share_bps"]),
                    lease_blocks=int(nodes["lease_blocks"]),
                ),
                UsageConfig(
                    epoch_length_seconds=int(usage["epoch_length_seconds"]),
                    owner_share_bps=int(usage["owner_share_bps"]),
                ),
                BridgeConfig(
                    committee=tuple(str(member) for member in bridge["committee"]),
                    threshold=int(bridge["threshold"]),
                ),
            )
        except KeyError as err:
            raise DeployConfigError(f"{where}: missing field {err}") from None
        except (TypeError, ValueError) as err:
            raise DeployConfigError(f"{where}: {err}") from None
        if not allocations:
            raise DeployConfigError(f"{where}: no allocations, so the token would have no supply")
        for allocation in allocations:
            if allocation.amount <= 0:
                raise DeployConfigError(f"{where}: allocation to {allocation.to} must be positive")
        return config


def load_deploy_config(network: str, path: Path = DEFAULT_CONFIG_PATH) -> DeployConfig:
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf8")) or {}
    except FileNotFoundError:
        raise DeployConfigError(f"no deploy configuration at {path}") from None
    if network not in document:
        raise DeployConfigError(
            f"{path} has no section for network {network!r} (it has: {', '.join(document) or 'none'})"
        )
    return DeployConfig.from_mapping(network, document[network])


def resolve_allocations(
    allocations: tuple[Allocation, ...], treasury: str, deployer: str, test_accounts: list[str] | None
) -> tuple[list[str], list[int]]:
    """Turn the configuration's recipients into the token constructor's (addresses, wei amounts)."""
    recipients: list[str] = []
    amounts: list[int] = []
    for allocation in allocations:
        if allocation.to == "treasury":
            targets = [treasury]
        elif allocation.to == "deployer":
            targets = [deployer]
        elif allocation.to == "test_accounts":
            if not test_accounts:
                raise DeployConfigError("'test_accounts' allocations exist only on local networks")
            targets = list(test_accounts)
        elif allocation.to.startswith("0x") and len(allocation.to) == 42:
            targets = [allocation.to]
        else:
            raise DeployConfigError(f"unknown allocation recipient {allocation.to!r}")
        for target in targets:
            recipients.append(target)
            amounts.append(allocation.amount * JOY)
    return recipients, amounts


def resolve_committee(committee: tuple[str, ...], test_accounts: list[str] | None) -> list[str]:
    """Turn the configuration's bridgers ("test_account:N" or addresses) into addresses."""
    members = []
    for member in committee:
        if member.startswith("test_account:"):
            index = member.removeprefix("test_account:")
            if not test_accounts:
                raise DeployConfigError(f"{member!r}: test accounts exist only on local networks")
            if not index.isdigit() or int(index) >= len(test_accounts):
                raise DeployConfigError(f"{member!r}: there are {len(test_accounts)} test accounts")
            members.append(test_accounts[int(index)])
        elif member.startswith("0x") and len(member) == 42:
            members.append(member)
        else:
            raise DeployConfigError(f"unknown bridge committee member {member!r}")
    return members


def quorum_votes(supply: int, quorum_percent: int) -> int:
    """The votes (wei) that reach the quorum of a supply (wei): GovernorVotesQuorumFraction's
    ``supply * numerator / 100``. A vote reaches it when for + abstain is at least this much."""
    return supply * quorum_percent // 100


def genesis_holdings(
    config: DeployConfig, deployer: str, test_accounts: list[str] | None = None
) -> tuple[int, dict[str, int], dict[str, list[str]]]:
    """The genesis supply (wei) and what each address other than the treasury receives at
    genesis (wei, summed over every entry naming it), with the entries that name it."""
    treasury = "treasury"  # stands for the timelock, whose address is not known before deployment
    holdings: dict[str, int] = {}
    names: dict[str, list[str]] = {}
    supply = 0
    for allocation in config.allocations:
        recipients, amounts = resolve_allocations((allocation,), treasury, deployer, test_accounts)
        for recipient, amount in zip(recipients, amounts, strict=False):
            supply += amount
            if recipient == treasury:
                continue
            key = recipient.lower()
            holdings[key] = holdings.get(key, 0) + amount
            names.setdefault(key, []).append(allocation.to)
    return supply, holdings, names


def check_deploy_config(
    config: DeployConfig, chain_id: int, deployer: str, test_accounts: list[str] | None = None
) -> None:
    """Refuses, before any transaction, a configuration that must not be deployed on this chain.

    * Governance delays below the floors the contracts enforce on this chain id (the deployment
      would revert half-way, after the timelock and the token).
    * Genesis allocations outside the treasury that together stay below the quorum: no proposal
      could ever pass, and the treasury could never be spent.
    * Outside local development chains: any single address (the deployer, an address named in
      several entries, any recipient but the treasury) receiving at least the quorum. Its holder
      alone could propose, vote, queue and execute every proposal, the treasury transfer to
      itself included: an admin key behind the timelock. The treasury is exempt: the timelock
      holds no delegation and spends only what proposals decide.
    """
    where = f"deploy configuration refused on chain {chain_id}"
    gov = config.governance
    floors = governance_floors(chain_id)
    kind = "a local development chain" if is_local_chain(chain_id) else "not a local development chain"
    for setting, value, floor, unit in (
        ("timelock_delay_seconds", gov.timelock_delay_seconds, floors.timelock_delay_seconds, "s"),
        ("voting_delay_blocks", gov.voting_delay_blocks, floors.voting_delay_blocks, "blocks"),
        ("voting_period_blocks", gov.voting_period_blocks, floors.voting_period_blocks, "blocks"),
    ):
        if value < floor:
            raise DeployConfigError(
                f"{where} ({kind}): governance.{setting} is {value:,} {unit}, below the floor of"
                f" {floor:,} {unit} that the contracts enforce on this chain"
            )

    supply, holdings, names = genesis_holdings(config, deployer, test_accounts)
    quorum = quorum_votes(supply, gov.quorum_percent)
    outside_treasury = sum(holdings.values())
    if outside_treasury < quorum:
        raise DeployConfigError(
            f"{where}: the allocations outside the treasury total {outside_treasury // JOY:,} JOY, below"
            f" the quorum of {quorum // JOY:,} JOY ({gov.quorum_percent} % of the {supply // JOY:,} JOY"
            " supply): no proposal could ever reach the quorum"
        )
    if is_local_chain(chain_id):
        return
    captured = sorted((amount, address) for address, amount in holdings.items() if amount >= quorum)
    if captured:
        details = "; ".join(
            f"{to_checksum_address(address)} ({' + '.join(names[address])}) receives {amount // JOY:,} JOY"
            for amount, address in reversed(captured)
        )
        raise DeployConfigError(
            f"{where} ({kind}): {details}, at least the quorum of {quorum // JOY:,} JOY"
            f" ({gov.quorum_percent} % of the {supply // JOY:,} JOY supply): one holder could pass"
            " any proposal alone. Split each such allocation among independent recipients, each"
            f" receiving less than {quorum // JOY:,} JOY."
        )


def deploy_protocol(
    deployer,
    config: DeployConfig,
    test_accounts: list | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> Deployment:
    """Deploy and wire the protocol from ``deployer``; returns the (unsaved) deployment record.

    Raises DeployConfigError, with nothing deployed, for a configuration that
    ``check_deploy_config`` refuses on the connected chain."""
    from ape import chain, project

    gov = config.governance
    check_deploy_config(config, chain.chain_id, deployer.address, [account.address for account in test_accounts or []])
    start_block = chain.blocks.height + 1

    log(f"JoyTimelock (delay {gov.timelock_delay_seconds} s)")
    timelock = deployer.deploy(project.JoyTimelock, gov.timelock_delay_seconds, [], [ZERO_ADDRESS], deployer.address)

    recipients, amounts = resolve_allocations(
        config.allocations,
        treasury=timelock.address,
        deployer=deployer.address,
        test_accounts=[account.address for account in test_accounts or []],
    )
    log(f"JoyToken ({sum(amounts) // JOY:,} {config.token_symbol} to {len(recipients)} recipients)")
    token = deployer.deploy(project.JoyToken, config.token_name, config.token_symbol, recipients, amounts)

    log(
        f"ModelGovernanceDAO (delay {gov.voting_delay_blocks} blocks, period {gov.voting_period_blocks}"
        f" blocks, quorum {gov.quorum_percent} %)"
    )
    dao = deployer.deploy(
        project.ModelGovernanceDAO,
        token.address,
        timelock.address,
        gov.voting_delay_blocks,
        gov.voting_period_blocks,
        gov.proposal_threshold * JOY,
        gov.quorum_percent,
    )

    log("wiring: the DAO proposes and cancels, anyone executes; the deployer renounces admin")
    timelock.grantRole(timelock.PROPOSER_ROLE(), dao.address, sender=deployer)
    timelock.grantRole(timelock.CANCELLER_ROLE(), dao.address, sender=deployer)
    timelock.renounceRole(timelock.DEFAULT_ADMIN_ROLE(), deployer.address, sender=deployer)

    committee = resolve_committee(config.bridge.committee, [a.address for a in test_accounts or []])
    core = _deploy_marketplace_core(deployer, config, token, timelock, committee, log)
    return Deployment(
        chain_id=chain.chain_id,
        deployer=deployer.address,
        start_block=start_block,
        contracts={
            "JoyToken": token.address,
            "TimelockController": timelock.address,
            "ModelGovernanceDAO": dao.address,
            **{name: contract.address for name, contract in core.items()},
        },
    )


def _deploy_marketplace_core(deployer, config: DeployConfig, token, timelock, committee, log) -> dict:
    """The marketplace and its components, owned by the deployer only until they are wired."""
    from ape import project

    nodes, usage, market = config.nodes, config.usage, config.marketplace
    log(f"NodeCoordinator (min stake {nodes.min_stake:,} JOY, task bond {nodes.task_bond:,} JOY)")
    coordinator = deployer.deploy(
        project.NodeCoordinator,
        token.address,
        deployer.address,
        timelock.address,
        nodes.min_stake * JOY,
        nodes.task_bond * JOY,
        nodes.unbonding_delay_seconds,
        nodes.max_missed_deadlines,
        nodes.slash_requester_share_bps,
        nodes.lease_blocks,
    )
    log("ProofOfInference (quorum and zero-knowledge policies; the ZKVerifier circuit registry)")
    judge = deployer.deploy(project.ProofOfInference, deployer.address)
    log("DigitsMLPVerifier (Groth16, the committed digits-MLP circuit), registered in ProofOfInference")
    digits_verifier = deployer.deploy(project.DigitsMLPVerifier)
    judge.registerCircuit(circuit_id(), digits_verifier, ZK_VERIFIER_LAYOUT, sender=deployer)
    log("DigitsMLPBatchVerifier (N proofs of the digits circuit in one pairing check), registered beside it")
    digits_batch_verifier = deployer.deploy(project.DigitsMLPBatchVerifier)
    judge.registerBatchVerifier(circuit_id(), digits_batch_verifier, sender=deployer)
    log(f"ProofOfUse (epochs of {usage.epoch_length_seconds:,} s)")
    proof_of_use = deployer.deploy(
        project.ProofOfUse, token.address, deployer.address, usage.epoch_length_seconds, usage.owner_share_bps
    )
    shares = [market.node_share_bps, market.owner_share_bps, market.protocol_share_bps]
    log(f"ModelMarketplaceV2 (fee shares node/owner/protocol {'/'.join(str(s) for s in shares)} bps)")
    marketplace = deployer.deploy(
        project.ModelMarketplaceV2,
        token.address,
        deployer.address,
        timelock.address,
        shares,
        market.max_deadline_window_seconds,
        [market.min_response_window_seconds, market.reveal_window_seconds],
    )

    log(f"IOTAValidator (bridger committee of {len(committee)}, threshold {config.bridge.threshold})")
    bridge = deployer.deploy(
        project.IOTAValidator, deployer.address, marketplace, proof_of_use, committee, config.bridge.threshold
    )

    log("wiring the marketplace core, then handing every ownership to the timelock")
    marketplace.setComponents(coordinator, judge, proof_of_use, sender=deployer)
    for component in (coordinator, proof_of_use):
        component.setMarketplace(marketplace, sender=deployer)
    proof_of_use.setBridge(bridge, sender=deployer)
    core = {
        "NodeCoordinator": coordinator,
        "ProofOfInference": judge,
        "DigitsMLPVerifier": digits_verifier,
        "DigitsMLPBatchVerifier": digits_batch_verifier,
        "ProofOfUse": proof_of_use,
        "ModelMarketplace": marketplace,
        "IOTAValidator": bridge,
    }
    for contract in core.values():
        if contract not in (digits_verifier, digits_batch_verifier):  # pure verifiers: no owner, nothing to govern
            contract.transferOwnership(timelock, sender=deployer)
    return core
