"""The DAO voter agent: follows ``ProposalCreated`` and votes by a declarative policy file.

A policy (YAML, e.g. ``agents/voter-policy.yaml``) lists the calls the voter supports: which
contract (by its name in ``deployments/<network>.json``), which function, and bounds on the
arguments. A proposal gets a *for* vote only if every call it makes is supported and within its
bounds; anything else (an unknown target, an unlisted function, an argument out of bounds, ETH
sent along) gets the policy's ``otherwise`` vote, *against* or *abstain*. Every vote carries its
explanation as the reason string (``castVoteWithReason``) and in the agent's log.

    otherwise: against                   # against | abstain
    supports:
      - contract: ModelMarketplace
        function: setFeeShares
        arguments:                       # by ABI name; an argument not listed may take any value
          newOwnerShareBps: {min: 1000, max: 3000}
          newProtocolShareBps: {one_of: [500, 1000]}

``ape run dao_voter`` runs ``agents/dao_voter.py``: one handler per DAO event and per new block,
on the agents' ``joynet.chain.bot.Bot``, each calling a ``DaoVoter`` method.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from eth_abi import decode as abi_decode
from eth_utils import to_checksum_address
from prometheus_client import CollectorRegistry, Counter, Gauge

from joynet.chain.constants import ZERO_ADDRESS
from joynet.chain.dao import ModelGovernanceDAO, ProposalState, VoteType
from joynet.governance.circuits import REGISTER, CeremonyCheck, CeremonyRules
from joynet.governance.errors import PolicyError

OTHERWISE_CHOICES = {"against": VoteType.Against, "abstain": VoteType.Abstain}
BOUND_KEYS = {"min", "max", "one_of"}
RULE_KEYS = {"contract", "function", "arguments"}
POLICY_KEYS = {"otherwise", "supports", "ceremonies"}


# ---- the policy ----


@dataclass(frozen=True)
class Bound:
    """Allowed values of one argument: an inclusive range and/or a list of values."""

    minimum: int | None = None
    maximum: int | None = None
    one_of: tuple | None = None

    def violation(self, name: str, value: Any) -> str | None:
        """Why ``value`` breaks this bound (None when it is within)."""
        if self.one_of is not None and _normalized(value) not in {_normalized(v) for v in self.one_of}:
            allowed = ", ".join(str(v) for v in self.one_of)
            return f"{name}={show_value(value)} is not one of the policy's values ({allowed})"
        if self.minimum is not None or self.maximum is not None:
            if not isinstance(value, int) or isinstance(value, bool):
                return f"{name}={show_value(value)} is not a number, so it cannot be within the policy's range"
            if self.minimum is not None and value < self.minimum:
                return f"{name}={value} is below the policy's minimum {self.minimum}"
            if self.maximum is not None and value > self.maximum:
                return f"{name}={value} is above the policy's maximum {self.maximum}"
        return None

    def describe(self, name: str, value: Any) -> str:
        shown = f"{name}={show_value(value)}"
        if self.one_of is not None:
            return f"{shown} is an allowed value"
        if self.minimum is not None and self.maximum is not None:
            return f"{shown} within [{self.minimum}, {self.maximum}]"
        return f"{shown} >= {self.minimum}" if self.minimum is not None else f"{shown} <= {self.maximum}"


@dataclass(frozen=True)
class FunctionRule:
    contract: str
    function: str
    bounds: Mapping[str, Bound] = field(default_factory=dict)


@dataclass(frozen=True)
class ProposedCall:
    target: str
    value: int
    calldata: bytes


@dataclass(frozen=True)
class DecodedCall:
    contract: str
    function: str
    arguments: dict[str, Any]

    def __str__(self) -> str:
        shown = ", ".join(f"{name}={show_value(value)}" for name, value in self.arguments.items())
        return f"{self.contract}.{self.function}({shown})"


@dataclass(frozen=True)
class CallVerdict:
    supported: bool
    call: str  # readable: "ModelMarketplace.setFeeShares(newNodeShareBps=7000, ...)" or the raw target
    why: str


@dataclass(frozen=True)
class Decision:
    support: VoteType
    verdicts: tuple[CallVerdict, ...]

    @property
    def reason(self) -> str:
        """The vote's reason string: the verdict on each call, the decisive ones first."""
        word = {VoteType.For: "for", VoteType.Against: "against", VoteType.Abstain: "abstain"}[self.support]
        ordered = sorted(self.verdicts, key=lambda verdict: verdict.supported)
        details = "; ".join(f"{verdict.call}: {verdict.why}" for verdict in ordered)
        return f"JoyNet voter policy: {word}. {details}"


class ContractDirectory:
    """The protocol's contracts by address: their deployment names and ABIs."""

    def __init__(self, contracts: Mapping[str, tuple[str, Any]]):
        """``contracts``: address -> (deployment name, Ape ContractType)."""
        self._by_address = {to_checksum_address(a): entry for a, entry in contracts.items()}
        self._by_name = {name: contract_type for name, contract_type in self._by_address.values()}

    @classmethod
    def from_deployment(cls, deployment) -> ContractDirectory:
        from joynet.chain.contract_types import container
        from joynet.chain.deployment_file import CONTRACT_TYPES

        return cls(
            {
                address: (name, container(CONTRACT_TYPES.get(name, name)).contract_type)
                for name, address in deployment.contracts.items()
            }
        )

    def lookup(self, address: str) -> tuple[str, Any] | None:
        return self._by_address.get(to_checksum_address(address))

    def functions(self, name: str) -> dict[str, Any]:
        """State-changing functions of the contract named ``name``, by function name."""
        contract_type = self._by_name.get(name)
        if contract_type is None:
            return {}
        return {abi.name: abi for abi in contract_type.mutable_methods}

    def decode(self, target: str, calldata: bytes) -> DecodedCall | CallVerdict:
        """The call by contract and argument names, or the verdict on a call that has none."""
        known = self.lookup(target)
        if known is None:
            return CallVerdict(False, f"a call to {target}", "not a JoyNet contract of this deployment")
        name, _ = known
        method = _method_by_selector(self.functions(name).values(), calldata[:4])
        if method is None:
            return CallVerdict(False, f"{name} (selector 0x{calldata[:4].hex()})", "no function of the contract")
        try:
            values = abi_decode([argument.canonical_type for argument in method.inputs], calldata[4:])
        except Exception as err:  # eth_abi raises several kinds for malformed calldata
            return CallVerdict(False, f"{name}.{method.name}", f"calldata does not decode ({err})")
        return DecodedCall(
            name, method.name, {arg.name: value for arg, value in zip(method.inputs, values, strict=False)}
        )

    def contract_type(self, name: str):
        return self._by_name[name]

    @property
    def names(self) -> list[str]:
        return sorted(self._by_name)


class VoterPolicy:
    """Which calls the voter supports, within which bounds, and its vote on everything else."""

    def __init__(
        self,
        rules: Iterable[FunctionRule],
        otherwise: VoteType = VoteType.Against,
        source: str = "policy",
        ceremonies: CeremonyRules | None = None,
    ):
        self.rules = {(rule.contract, rule.function): rule for rule in rules}
        self.otherwise = otherwise
        self.source = source
        self.ceremonies = ceremonies or CeremonyRules()

    # -- reading --

    @classmethod
    def load(cls, path: str | Path) -> VoterPolicy:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf8")
        except FileNotFoundError:
            raise PolicyError(f"no voter policy at {path}") from None
        except OSError as err:
            raise PolicyError(f"cannot read the voter policy {path}: {err}") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise PolicyError(f"{path} is not valid YAML: {err}") from None
        return cls.from_mapping(data, source=str(path))

    @classmethod
    def from_mapping(cls, data: Any, source: str = "policy") -> VoterPolicy:
        if not isinstance(data, dict):
            raise PolicyError(f"{source}: expected a mapping with 'otherwise' and 'supports'")
        _no_unknown_keys(data, POLICY_KEYS, source)
        otherwise = data.get("otherwise", "against")
        if otherwise not in OTHERWISE_CHOICES:
            raise PolicyError(f"{source}: 'otherwise' must be 'against' or 'abstain', not {otherwise!r}")
        supports = data.get("supports")
        if not isinstance(supports, list):
            raise PolicyError(f"{source}: 'supports' must be a list of {{contract, function, arguments}} entries")
        rules: list[FunctionRule] = []
        for index, entry in enumerate(supports):
            where = f"{source}: supports[{index}]"
            if not isinstance(entry, dict):
                raise PolicyError(f"{where}: expected a mapping with 'contract', 'function' and 'arguments'")
            _no_unknown_keys(entry, RULE_KEYS, where)
            contract, function = entry.get("contract"), entry.get("function")
            if not isinstance(contract, str) or not contract:
                raise PolicyError(f"{where}: 'contract' must name a contract of the deployment")
            if not isinstance(function, str) or not function:
                raise PolicyError(f"{where}: 'function' must name one of {contract}'s functions")
            arguments = entry.get("arguments") or {}
            if not isinstance(arguments, dict):
                raise PolicyError(f"{where}: 'arguments' must map argument names to bounds")
            bounds = {
                name: _parse_bound(spec, f"{where} ({contract}.{function}) argument {name!r}")
                for name, spec in arguments.items()
            }
            if (contract, function) in {(rule.contract, rule.function) for rule in rules}:
                raise PolicyError(f"{where}: {contract}.{function} is listed twice")
            rules.append(FunctionRule(contract, function, bounds))
        ceremonies = CeremonyRules.from_mapping(data.get("ceremonies"), source)
        return cls(rules, OTHERWISE_CHOICES[otherwise], source, ceremonies)

    def check_against(self, directory: ContractDirectory) -> None:
        """Refuses a policy that names a contract, function or argument the protocol lacks
        (a typo there would otherwise quietly turn a supported change into an 'against')."""
        for rule in self.rules.values():
            where = f"{self.source}: {rule.contract}.{rule.function}"
            if rule.contract not in directory.names:
                raise PolicyError(
                    f"{where}: no contract {rule.contract!r} in the deployment (it has: {', '.join(directory.names)})"
                )
            functions = directory.functions(rule.contract)
            if rule.function not in functions:
                raise PolicyError(
                    f"{where}: {rule.contract} has no function {rule.function!r} (it has: {', '.join(sorted(functions))})"
                )
            inputs = [argument.name for argument in functions[rule.function].inputs]
            for name in rule.bounds:
                if name not in inputs:
                    raise PolicyError(f"{where}: no argument {name!r} (the function takes: {', '.join(inputs)})")

    # -- deciding --

    def evaluate(self, calls: Iterable[ProposedCall], directory: ContractDirectory) -> Decision:
        return self.decide(tuple(self._judge(call, directory) for call in calls))

    def decide(self, verdicts: tuple[CallVerdict, ...]) -> Decision:
        """For when there are verdicts and every one supports its call; otherwise the policy's vote."""
        support = VoteType.For if verdicts and all(v.supported for v in verdicts) else self.otherwise
        return Decision(support, verdicts)

    async def check_registrations(
        self,
        calls: list[ProposedCall],
        decision: Decision,
        description: str,
        directory: ContractDirectory,
        ceremonies: CeremonyCheck | None,
    ) -> Decision:
        """``decision`` once every circuit registration it supports is checked against the
        ceremony transcript its description names (``joynet.governance.circuits``): the DAO
        registers a verifier only with a transcript anyone can verify."""
        verdicts = list(decision.verdicts)
        for index, (call, verdict) in enumerate(zip(calls, verdicts, strict=True)):
            decoded = directory.decode(call.target, call.calldata)
            if not verdict.supported or not isinstance(decoded, DecodedCall):
                continue
            if (decoded.contract, decoded.function) != REGISTER:
                continue
            if ceremonies is None:
                why: str | None = "cannot check its ceremony transcript (the voter has no IPFS store)"
            else:
                why = await ceremonies.judge(description, decoded.arguments)
            if why is not None:
                verdicts[index] = CallVerdict(False, verdict.call, why)
        return self.decide(tuple(verdicts))

    def _judge(self, call: ProposedCall, directory: ContractDirectory) -> CallVerdict:
        decoded = directory.decode(call.target, call.calldata)
        if isinstance(decoded, CallVerdict):
            return decoded
        name, function, arguments = decoded.contract, decoded.function, decoded.arguments
        shown = str(decoded)
        if call.value:
            return CallVerdict(False, shown, f"sends {call.value} wei along, which the policy never supports")
        rule = self.rules.get((name, function))
        if rule is None:
            return CallVerdict(False, shown, f"{name}.{function} is not in the policy")
        for argument, bound in rule.bounds.items():
            if argument not in arguments:
                return CallVerdict(False, shown, f"the policy bounds {argument!r}, which this function does not take")
            if (why := bound.violation(argument, arguments[argument])) is not None:
                return CallVerdict(False, shown, why)
        within = ", ".join(bound.describe(a, arguments[a]) for a, bound in rule.bounds.items())
        return CallVerdict(True, shown, f"supported ({within})" if within else "supported (any arguments)")


def _parse_bound(spec: Any, where: str) -> Bound:
    if not isinstance(spec, dict) or not spec:
        raise PolicyError(f"{where}: expected a mapping with min, max and/or one_of")
    _no_unknown_keys(spec, BOUND_KEYS, where)
    minimum, maximum, one_of = spec.get("min"), spec.get("max"), spec.get("one_of")
    for key, value in (("min", minimum), ("max", maximum)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise PolicyError(f"{where}: {key} must be an integer, not {value!r}")
    if minimum is not None and maximum is not None and minimum > maximum:
        raise PolicyError(f"{where}: min {minimum} is above max {maximum}")
    if one_of is not None and (not isinstance(one_of, list) or not one_of):
        raise PolicyError(f"{where}: one_of must be a non-empty list of values")
    return Bound(minimum, maximum, tuple(one_of) if one_of is not None else None)


def _no_unknown_keys(mapping: dict, known: set[str], where: str) -> None:
    unknown = sorted(str(key) for key in set(mapping) - known)
    if unknown:
        raise PolicyError(f"{where}: unknown key(s) {', '.join(unknown)} (expected: {', '.join(sorted(known))})")


def _method_by_selector(methods: Iterable[Any], selector: bytes):
    from eth_utils import function_signature_to_4byte_selector

    for method in methods:
        if function_signature_to_4byte_selector(method.selector) == selector:
            return method
    return None


def _normalized(value: Any) -> Any:
    if isinstance(value, str):
        return value.lower()
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return value


def show_value(value: Any) -> str:
    """An argument value as people write it (bytes as 0x-hex)."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(show_value(v) for v in value) + "]"
    return str(value)


# ---- the agent ----


@dataclass
class PendingVote:
    proposal_id: int
    decision: Decision
    vote_start: int


class DaoVoter:
    """Votes on every proposal by the policy, once, as soon as voting opens."""

    def __init__(
        self,
        policy: VoterPolicy,
        dao: ModelGovernanceDAO,
        token,
        directory: ContractDirectory,
        log: Callable[[str], None] = print,
        ceremonies: CeremonyCheck | None = None,
    ):
        """``ceremonies`` checks the transcript of each circuit registration (without it, every
        registration is voted down: its transcript cannot be checked)."""
        self.policy, self.dao, self.token, self.directory, self.log = policy, dao, token, directory, log
        self.ceremonies = ceremonies
        self.account = dao.account
        self.pending: dict[int, PendingVote] = {}
        self.votes_cast = 0
        self.metrics = VoterMetrics(pending=lambda: len(self.pending))  # served by the agent's monitor

    async def ensure_delegation(self) -> None:
        """Delegates the account's JOY to itself if it has no delegate (undelegated JOY does not vote)."""
        delegate = self.token.delegates(self.account)
        balance = self.token.balanceOf(self.account)
        if delegate == ZERO_ADDRESS:
            await asyncio.to_thread(self.token.invoke_transaction, "delegate", self.account, sender=self.account)
            self.log(f"delegation: {self.account.address} had no delegate; delegated its {_joy(balance)} to itself")
        elif delegate != self.account.address:
            self.log(
                f"delegation: {self.account.address} delegates its {_joy(balance)} to {delegate}; it votes with what others delegate to it"
            )
        self.log(f"voting power of {self.account.address}: {_joy(self.token.getVotes(self.account))}")

    async def consider(self, created) -> None:
        """A ``ProposalCreated`` log: decide now, vote when voting opens."""
        proposal_id = created.proposalId
        if self.dao.contract.hasVoted(proposal_id, self.account):
            return
        calls = [
            ProposedCall(to_checksum_address(t), int(v), bytes(c))
            for t, v, c in zip(created.targets, created.values, created.calldatas, strict=False)
        ]
        decision = self.policy.evaluate(calls, self.directory)
        decision = await self.policy.check_registrations(
            calls, decision, created.description or "", self.directory, self.ceremonies
        )
        title = (created.description or "").splitlines()[0][:80] if created.description else "(no description)"
        self.log(
            f'proposal {_short(proposal_id)} "{title}" by {created.proposer}: will vote {decision.support.name.upper()}'
        )
        for verdict in decision.verdicts:
            self.log(f"    {'ok ' if verdict.supported else 'NO '} {verdict.call}: {verdict.why}")
        self.pending[proposal_id] = PendingVote(proposal_id, decision, int(created.voteStart))
        self.metrics.proposals_seen.inc()

    async def vote_due(self, height: int) -> None:
        """Casts every decided vote whose proposal is now open; drops those that closed unvoted."""
        for proposal_id, pending in list(self.pending.items()):
            state = self.dao.state(proposal_id)
            if state is ProposalState.Pending:
                continue
            del self.pending[proposal_id]
            if state is not ProposalState.Active:
                self.log(f"proposal {_short(proposal_id)} is {state.name} before I could vote")
                self.metrics.votes_missed.inc()
                continue
            if self.dao.contract.hasVoted(proposal_id, self.account):
                continue
            weight = self.token.getPastVotes(self.account, pending.vote_start)
            try:
                await self.dao.castVote(proposal_id, pending.decision.support, reason=pending.decision.reason)
            except Exception as err:  # a failed vote must not stop the agent from voting on the next
                self.log(f"could not vote on {_short(proposal_id)}: {err}")
                self.metrics.vote_failures.inc()
                continue
            self.votes_cast += 1
            self.metrics.votes_cast.labels(pending.decision.support.name.lower()).inc()
            self.log(
                f"voted {pending.decision.support.name.upper()} on {_short(proposal_id)} with {_joy(weight)} "
                f"(block {height}, gas {self.dao.last_receipt.gas_used:,}); reason: {pending.decision.reason}"
            )
            if weight == 0:
                self.log("    my voting power at the proposal's snapshot was 0 (delegated after it was made?)")

    def outcome(self, log) -> None:
        """ProposalExecuted / ProposalCanceled: a closing line for proposals the voter followed."""
        self.log(f"proposal {_short(log.proposalId)}: {log.event_name.removeprefix('Proposal').lower()}")


def _short(proposal_id: int) -> str:
    text = hex(proposal_id)
    return text[:12] + "..." if len(text) > 14 else text


def _joy(amount: int) -> str:
    return f"{amount / 10**18:,.0f} JOY"


def timestamped(printer: Callable[[str], None]) -> Callable[[str], None]:
    return lambda text: printer(f"{time.strftime('%H:%M:%S')} {text}")


class VoterMetrics:
    """The voter's Prometheus counters, in a registry of their own (``registry``)."""

    def __init__(self, pending: Callable[[], int]):
        """``pending``: the number of decided votes waiting for their proposal to open, read at each scrape."""
        self.registry = CollectorRegistry()
        self.votes_cast = Counter(
            "joynet_voter_votes_cast", "Votes cast, by support", ["support"], registry=self.registry
        )
        for support in VoteType:
            self.votes_cast.labels(support.name.lower())
        self.proposals_seen = Counter(
            "joynet_voter_proposals_seen", "Proposals the voter decided on", registry=self.registry
        )
        self.vote_failures = Counter(
            "joynet_voter_vote_failures", "Votes whose transaction failed", registry=self.registry
        )
        self.votes_missed = Counter(
            "joynet_voter_votes_missed", "Proposals that closed before the voter could vote", registry=self.registry
        )
        self.pending = Gauge(
            "joynet_voter_votes_pending", "Votes waiting for their proposal to open", registry=self.registry
        )
        self.pending.set_function(pending)
