"""Attack: moving someone else's balance.

The attacker is anyone. A requester deposited JOY into the marketplace to pay its requests from
its balance; the attacker calls ``withdrawBalance(requester)``, which pushed the whole balance
back to the requester's wallet, so that the requester's next ``requestInferenceFromBalance``
fails (its automation stalls, its requests miss their moment).

Rule: balances move only by their owner. Only the account itself, or an operator it approved
with ``setOperator``, may withdraw its balance (and only to the account); anyone else gets
``ModelMarketplaceNotAuthorized`` and the balance still pays the account's requests.

Old code (43cec05): anyone could withdraw any balance to its owner. An outsider withdrew a
requester's 50 JOY deposit; the balance was 0 and the requester's requestInferenceFromBalance
reverted (ModelMarketplaceInsufficientBalance).
"""

import pytest

from helpers.adversary import output, request_event
from helpers.chain_asserts import reverts_with
from joynet.chain.deploy import JOY

PRICE = 5 * JOY
DEPOSIT = 50 * JOY


@pytest.fixture
def digits(register_model, register_node, operators):
    model_id = register_model("digits", price=PRICE)
    register_node(operators[0], [model_id])
    return model_id


@pytest.fixture
def deposited(marketplace, token, requester):
    token.approve(marketplace, DEPOSIT, sender=requester)
    marketplace.deposit(requester, DEPOSIT, sender=requester)
    return DEPOSIT


def test_withdraw_balance__outsider_for_the_requester__not_authorized_and_the_balance_still_pays(
    marketplace, token, chain, requester, outsider, operators, digits, deposited, assign_nodes,
):
    wallet = token.balanceOf(requester)
    with reverts_with("ModelMarketplaceNotAuthorized"):
        marketplace.withdrawBalance(requester, sender=outsider)
    assert marketplace.balances(requester) == DEPOSIT and token.balanceOf(requester) == wallet
    # The requester's next request is paid from the balance and served.
    receipt = marketplace.requestInferenceFromBalance(
        digits, output("in"), "ipfs://bafyin", PRICE, chain.pending_timestamp + 600, sender=requester
    )
    request = assign_nodes(request_event(marketplace, receipt))
    marketplace.submitResult(request, output("out"), "ipfs://bafyout", b"", sender=operators[0])
    assert marketplace.balances(requester) == DEPOSIT - PRICE and token.balanceOf(requester) == wallet


def test_withdraw_balance__outsider_for_a_node__not_authorized(
    marketplace, requester, outsider, operators, digits, request_inference,
):
    # The same for what a node earned: nobody decides for it when its fees leave.
    request, (node,), _ = request_inference(digits)
    marketplace.submitResult(request, output("out"), "ipfs://bafyout", b"", sender=operators[0])
    earned = marketplace.balances(node)
    assert earned > 0
    with reverts_with("ModelMarketplaceNotAuthorized"):
        marketplace.withdrawBalance(node, sender=outsider)
    assert marketplace.balances(node) == earned


def test_set_operator__by_the_outsider_for_itself__grants_nothing_over_others(
    marketplace, requester, outsider, deposited,
):
    # Approvals are keyed by the approving account: an outsider can only approve operators of
    # its own (empty) balance.
    marketplace.setOperator(outsider, True, sender=outsider)
    assert not marketplace.isOperator(requester, outsider)
    with reverts_with("ModelMarketplaceNotAuthorized"):
        marketplace.withdrawBalance(requester, sender=outsider)


def test_withdraw_balance__approved_operator__pays_the_account_never_the_operator_and_can_be_revoked(
    marketplace, token, requester, outsider, carol, deposited,
):
    marketplace.setOperator(carol, True, sender=requester)
    wallet, operator_wallet = token.balanceOf(requester), token.balanceOf(carol)
    marketplace.withdrawBalance(requester, sender=carol)
    assert token.balanceOf(requester) == wallet + DEPOSIT and token.balanceOf(carol) == operator_wallet
    # Revoked, the operator is an outsider again.
    token.approve(marketplace, DEPOSIT, sender=requester)
    marketplace.deposit(requester, DEPOSIT, sender=requester)
    marketplace.setOperator(carol, False, sender=requester)
    with reverts_with("ModelMarketplaceNotAuthorized"):
        marketplace.withdrawBalance(requester, sender=carol)
