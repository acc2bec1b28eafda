"""The DAO voter's policy: reading the file, and the vote it gives each proposed call.

No chain needed: calls are encoded with the contracts' real ABIs and judged against a directory
of made-up addresses."""

import textwrap

import pytest
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector

from joynet.chain.deployment_file import PROJECT_ROOT
from joynet.chain.dao import VoteType
from joynet.governance.voter import ContractDirectory, PolicyError, ProposedCall, VoterPolicy

MARKETPLACE = "0x" + "11" * 20
PROOF_OF_USE = "0x" + "22" * 20
GOVERNOR = "0x" + "33" * 20
STRANGER = "0x" + "44" * 20

POLICY = """
otherwise: against
supports:
  - contract: ModelMarketplace
    function: setFeeShares
    arguments:
      newOwnerShareBps: {min: 1000, max: 3000}
      newNodeShareBps: {min: 6000}
  - contract: ProofOfUse
    function: setOwnerShareBps
    arguments:
      newOwnerShareBps: {one_of: [2000, 3000]}
"""


@pytest.fixture(scope="module")
def directory(project):
    return ContractDirectory(
        {
            MARKETPLACE: ("ModelMarketplace", project.ModelMarketplaceV2.contract_type),
            PROOF_OF_USE: ("ProofOfUse", project.ProofOfUse.contract_type),
            GOVERNOR: ("ModelGovernanceDAO", project.ModelGovernanceDAO.contract_type),
        }
    )


@pytest.fixture
def write_policy(tmp_path):
    def write(text):
        path = tmp_path / "policy.yaml"
        path.write_text(textwrap.dedent(text))
        return path

    return write


@pytest.fixture
def policy(write_policy):
    return VoterPolicy.load(write_policy(POLICY))


def call(target, signature, *args, value=0):
    types = signature[signature.index("(") + 1 : -1].split(",")
    return ProposedCall(target, value, function_signature_to_4byte_selector(signature) + encode(types, list(args)))


def fee_shares(node, owner, protocol):
    return call(MARKETPLACE, "setFeeShares(uint16,uint16,uint16)", node, owner, protocol)


def test_evaluate__royalty_within_bounds__votes_for_with_the_bounds_in_the_reason(policy, directory):
    decision = policy.evaluate([fee_shares(7000, 2500, 500)], directory)
    assert decision.support is VoteType.For
    assert "ModelMarketplace.setFeeShares(newNodeShareBps=7000, newOwnerShareBps=2500, newProtocolShareBps=500)" in decision.reason
    assert "newOwnerShareBps=2500 within [1000, 3000]" in decision.reason


@pytest.mark.parametrize("owner", [1000, 3000])
def test_evaluate__royalty_on_a_bound__votes_for(policy, directory, owner):
    assert policy.evaluate([fee_shares(10_000 - owner - 500, owner, 500)], directory).support is VoteType.For


@pytest.mark.parametrize(
    "shares, why",
    [
        ((5000, 4500, 500), "newOwnerShareBps=4500 is above the policy's maximum 3000"),
        ((8500, 500, 1000), "newOwnerShareBps=500 is below the policy's minimum 1000"),
        ((5500, 3000, 1500), "newNodeShareBps=5500 is below the policy's minimum 6000"),
    ],
)
def test_evaluate__argument_out_of_bounds__votes_against_and_says_which(policy, directory, shares, why):
    decision = policy.evaluate([fee_shares(*shares)], directory)
    assert decision.support is VoteType.Against
    assert why in decision.reason


def test_evaluate__value_not_in_one_of__votes_against(policy, directory):
    decision = policy.evaluate([call(PROOF_OF_USE, "setOwnerShareBps(uint16)", 2500)], directory)
    assert decision.support is VoteType.Against
    assert "newOwnerShareBps=2500 is not one of the policy's values (2000, 3000)" in decision.reason
    assert policy.evaluate([call(PROOF_OF_USE, "setOwnerShareBps(uint16)", 3000)], directory).support is VoteType.For


def test_evaluate__unknown_target__votes_against(policy, directory):
    decision = policy.evaluate([call(STRANGER, "setFeeShares(uint16,uint16,uint16)", 7000, 2500, 500)], directory)
    assert decision.support is VoteType.Against
    assert f"a call to {STRANGER}: not a JoyNet contract of this deployment" in decision.reason


def test_evaluate__function_not_in_policy__votes_against(policy, directory):
    decision = policy.evaluate([call(GOVERNOR, "setVotingPeriod(uint32)", 30)], directory)
    assert decision.support is VoteType.Against
    assert "ModelGovernanceDAO.setVotingPeriod is not in the policy" in decision.reason


def test_evaluate__unknown_selector__votes_against(policy, directory):
    decision = policy.evaluate([ProposedCall(MARKETPLACE, 0, bytes.fromhex("deadbeef"))], directory)
    assert decision.support is VoteType.Against
    assert "selector 0xdeadbeef" in decision.reason


def test_evaluate__eth_sent_along__votes_against(policy, directory):
    decision = policy.evaluate([call(MARKETPLACE, "setFeeShares(uint16,uint16,uint16)", 7000, 2500, 500, value=1)], directory)
    assert decision.support is VoteType.Against
    assert "sends 1 wei along" in decision.reason


def test_evaluate__one_bad_call_among_good__votes_against_and_names_the_bad_one_first(policy, directory):
    decision = policy.evaluate([fee_shares(7000, 2500, 500), call(GOVERNOR, "setVotingPeriod(uint32)", 30)], directory)
    assert decision.support is VoteType.Against
    assert decision.reason.index("setVotingPeriod") < decision.reason.index("setFeeShares")


def test_evaluate__otherwise_abstain__abstains_on_unsupported(write_policy, directory):
    policy = VoterPolicy.load(write_policy(POLICY.replace("otherwise: against", "otherwise: abstain")))
    decision = policy.evaluate([fee_shares(5000, 4500, 500)], directory)
    assert decision.support is VoteType.Abstain
    assert decision.reason.startswith("JoyNet voter policy: abstain.")


def test_check_against__shipped_policy__matches_the_contracts(directory):
    VoterPolicy.load(PROJECT_ROOT / "agents" / "voter-policy.yaml").check_against(directory)


@pytest.mark.parametrize(
    "text, message",
    [
        ("supports: [", "is not valid YAML"),
        ("- just a list", "expected a mapping"),
        ("otherwise: for\nsupports: []", "'otherwise' must be 'against' or 'abstain'"),
        ("otherwise: against", "'supports' must be a list"),
        ("supports: [{contract: ModelMarketplace}]", "'function' must name"),
        ("supports: [{contract: M, function: f, argumets: {}}]", "unknown key(s) argumets"),
        ("supports: [{contract: M, function: f, arguments: {x: {min: 5, max: 1}}}]", "min 5 is above max 1"),
        ("supports: [{contract: M, function: f, arguments: {x: {max: ten}}}]", "max must be an integer"),
        ("supports: [{contract: M, function: f, arguments: {x: {below: 3}}}]", "unknown key(s) below"),
        ("supports: [{contract: M, function: f}, {contract: M, function: f}]", "M.f is listed twice"),
        ("supports: []\nceremonies: {ptau: []}", "'ceremonies' takes ptau_sha256 (a list) and min_contributions"),
        ("supports: []\nceremonies: {ptau_sha256: [abc]}", "must list sha256 digests (64 lowercase hex digits)"),
        ("supports: []\nceremonies: {min_contributions: 0}", "min_contributions must be a positive integer"),
    ],
)
def test_load__malformed_policy__raises_a_clear_error(write_policy, text, message):
    path = write_policy(text)
    with pytest.raises(PolicyError) as error:
        VoterPolicy.load(path)
    assert message in str(error.value)
    assert str(path) in str(error.value)


def test_load__missing_file__says_where_it_looked(tmp_path):
    with pytest.raises(PolicyError, match="no voter policy at"):
        VoterPolicy.load(tmp_path / "absent.yaml")


@pytest.mark.parametrize(
    "rule, message",
    [
        ("{contract: Marketplace, function: setFeeShares}", "no contract 'Marketplace' in the deployment"),
        ("{contract: ModelMarketplace, function: setFeeShare}", "ModelMarketplace has no function 'setFeeShare'"),
        ("{contract: ModelMarketplace, function: setFeeShares, arguments: {royalty: {max: 1}}}", "no argument 'royalty'"),
    ],
)
def test_check_against__names_the_protocol_lacks__raises_a_clear_error(write_policy, directory, rule, message):
    policy = VoterPolicy.load(write_policy(f"supports: [{rule}]"))
    with pytest.raises(PolicyError, match=message):
        policy.check_against(directory)
