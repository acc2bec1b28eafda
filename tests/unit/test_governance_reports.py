"""What `ape run governance` checks and prints before and after it sends: the proposal a command
names, a second vote refused, and a proposal's calls described. Stand-ins for the DAO client; the
calls are encoded with the contracts' real ABIs. The commands themselves: test_governance_cli.py."""

from types import SimpleNamespace

import pytest
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector

from joynet.chain.dao import GovernanceError
from joynet.governance.errors import AlreadyVoted, UnknownProposal
from joynet.governance.proposals import check_not_voted, existing_proposal
from joynet.governance.reports import describe_call
from joynet.governance.voter import ContractDirectory

MARKETPLACE = "0x" + "11" * 20
VOTER = SimpleNamespace(address="0x" + "55" * 20)


def dao_with(snapshots=None, voted=False):
    contract = SimpleNamespace(
        proposalSnapshot=lambda proposal_id: (snapshots or {}).get(proposal_id, 0),
        hasVoted=lambda proposal_id, account: voted,
    )
    return SimpleNamespace(contract=contract, account=VOTER)


@pytest.fixture(scope="module")
def directory(project):
    return ContractDirectory({MARKETPLACE: ("ModelMarketplace", project.ModelMarketplaceV2.contract_type)})


def test_existing_proposal__hex_or_decimal_id_of_a_proposal__its_id():
    dao = dao_with({0x1234: 100})
    assert existing_proposal(dao, "0x1234") == existing_proposal(dao, str(0x1234)) == 0x1234


def test_existing_proposal__id_the_dao_does_not_have__unknown_proposal_naming_the_status_command():
    with pytest.raises(UnknownProposal) as error:
        existing_proposal(dao_with(), "0x1234")
    assert str(error.value) == "no proposal 0x1234 on this DAO (ape run governance status lists them)"
    assert isinstance(error.value, GovernanceError)


def test_existing_proposal__not_a_number__governance_error():
    with pytest.raises(GovernanceError, match="'twelve' is not a proposal id"):
        existing_proposal(dao_with(), "twelve")


def test_check_not_voted__account_has_voted__already_voted_naming_account_and_proposal():
    check_not_voted(dao_with(voted=False), 0x1234, "0x1234")
    with pytest.raises(AlreadyVoted) as error:
        check_not_voted(dao_with(voted=True), 0x1234, "0x1234")
    assert str(error.value) == f"{VOTER.address} has already voted on proposal 0x1234"


def test_describe_call__known_function__contract_function_and_named_arguments(directory):
    selector = function_signature_to_4byte_selector("setFeeShares(uint16,uint16,uint16)")
    calldata = selector + encode(["uint16", "uint16", "uint16"], [7000, 2500, 500])
    assert describe_call(directory, MARKETPLACE, calldata) == (
        "ModelMarketplace.setFeeShares(newNodeShareBps=7000, newOwnerShareBps=2500, newProtocolShareBps=500)"
    )


def test_describe_call__unknown_target_or_selector__the_call_with_why_it_is_not_decoded(directory):
    stranger = "0x" + "44" * 20
    assert describe_call(directory, stranger, b"\1\2\3\4") == (
        f"a call to {stranger} (not a JoyNet contract of this deployment)"
    )
    assert describe_call(directory, MARKETPLACE, b"\1\2\3\4") == (
        "ModelMarketplace (selector 0x01020304) (no function of the contract)"
    )
