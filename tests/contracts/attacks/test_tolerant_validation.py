"""Attack: cheating under the tolerant policy (one generator, k - 1 validators).

A language model's output differs in its last bits from one machine to the next, so its k nodes
cannot be asked to agree bit for bit. Under a model's tolerant policy the first assigned node,
the generator, submits its answer in the clear, and the other k - 1, the validators, re-run the
model's prefill over it and vote (joynet.inference.toploc). Each participant may cheat:

- the generator submits a cheap or wrong answer, hoping to be paid for it;
- a validator votes without checking (a lazy "accept"), or rejects an honest answer to hurt
  the generator, or copies another validator's vote;
- a validator votes before there is anything to check, the generator votes for itself, a node
  answers twice or after its time.

Rules: the validators' votes are sealed (sealResult, bound to the validator) until every
validator has voted or the vote window has closed, as a quorum's results are. The chain settles
on the generator's answer only when a strict majority of the validators accept it; when a strict
majority reject it, the generator and the validators that accepted are slashed and each rejecting
validator is paid what an accept would have earned it, so that a vote's outcome does not change
a validator's pay; the requester is refunded all but the nodes' share (it has seen the answer).
No majority (silent validators, or a tie): only the silent are slashed.

Old code (before the tolerant policy): a language model settled only under a quorum's
bit-for-bit agreement; a node whose honest answer differed in its last bits (another CPU, another
dtype) was slashed as a dissenter, and there was no way to register a model any other way.
"""

import pytest
from helpers.adversary import (
    BPS,
    NODE_SHARE_BPS,
    OWNER_SHARE_BPS,
    REFUNDED,
    SETTLED,
    TASK_BOND,
    ZERO32,
    by_address,  # noqa: F401 (fixtures)
    commit,
    output,
    past_deadline,
    reveal,
)
from helpers.chain_asserts import reverts_with
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from joynet.chain.deploy import JOY
from joynet.chain.marketplace import model_key

PRICE = 9 * JOY
STAKE = 2_000 * JOY
ANSWER = output("the generator's answer")
REJECT = output("reject")  # any value but the generator's output commitment is a rejection


@pytest.fixture
def tolerant_model(register_model, register_node, operators):
    """A tolerant model of quorum k served by exactly k nodes; returns its id."""

    def register(quorum=3, name="smollm2"):
        model_id = register_model(name, price=PRICE, quorum=quorum, tolerant=True)
        for operator in operators[:quorum]:
            register_node(operator, [model_id], stake=STAKE)
        return model_id

    return register


@pytest.fixture
def tolerant_request(tolerant_model, request_inference, by_address):
    """A tolerant request: (request, its generator, its validators) as accounts."""

    def make(quorum=3):
        request, nodes, _ = request_inference(tolerant_model(quorum))
        return request, by_address[nodes[0]], [by_address[node] for node in nodes[1:]]

    return make


def generate(marketplace, request, generator, answer=ANSWER):
    return marketplace.submitResult(request, answer, "ipfs://bafyanswer", b"", sender=generator)


def vote(marketplace, request, votes):
    """Every (validator, vote) commits, then reveals; returns the last reveal's receipt."""
    for validator, value in votes:
        commit(marketplace, request, validator, value)
    return [reveal(marketplace, request, validator, value) for validator, value in votes][-1]


def past_vote_window(marketplace, chain, request):
    """Moves the chain past the validators' commit window (the deadline plus revealWindow)."""
    chain.pending_timestamp = max(chain.pending_timestamp, request.deadline + marketplace.revealWindow() + 1)


def past_votes_reveal_window(marketplace, chain, request):
    chain.pending_timestamp = max(chain.pending_timestamp, request.deadline + 2 * marketplace.revealWindow() + 1)


def stake_of(coordinator, account):
    return coordinator.nodeInfo(account).stake


def assert_all_free(coordinator, accounts):
    """Every node's bond is back (released or slashed): nothing stays locked for the request."""
    assert [coordinator.nodeInfo(account).activeTasks for account in accounts] == [0] * len(accounts)
    assert [coordinator.nodeInfo(account).bonded for account in accounts] == [0] * len(accounts)


# ---- registration ----


def test_register_model__tolerant__stored_with_the_model(marketplace, register_model):
    model_id = register_model("smollm2", price=PRICE, quorum=4, tolerant=True)
    model = marketplace.getModel(model_id)
    assert model.tolerant and model.quorum == 4
    assert not marketplace.getModel(register_model("minilm", price=PRICE, quorum=3)).tolerant


@pytest.mark.parametrize("quorum, circuit", [(1, ZERO32), (3, model_key("a circuit"))])
def test_register_model__tolerant_without_validators_or_with_a_circuit__reverts(register_model, quorum, circuit):
    with reverts_with("ModelMarketplaceInvalidTolerantPolicy", quorum=quorum):
        register_model("smollm2", price=PRICE, quorum=quorum, circuit_id=circuit, tolerant=True)


# ---- the honest path ----


def test_validators__accept_the_generators_answer__settled_and_all_paid_alike(
    marketplace, coordinator, tolerant_request
):
    request, generator, validators = tolerant_request()
    receipt = generate(marketplace, request, generator)
    (submitted,) = receipt.decode_logs(marketplace.ResultSubmitted)
    assert submitted.node == generator.address and submitted.outputCommitment == ANSWER
    receipt = vote(marketplace, request, [(validator, ANSWER) for validator in validators])
    (settled,) = receipt.decode_logs(marketplace.InferenceSettled)
    assert settled.outputCommitment == ANSWER
    per_node = PRICE * NODE_SHARE_BPS // BPS // 3
    assert [marketplace.balances(node) for node in (generator, *validators)] == [per_node] * 3
    assert marketplace.requestStatus(request.id) == SETTLED
    assert_all_free(coordinator, [generator, *validators])


# ---- the generator cheats ----


def test_generator__submits_a_wrong_answer__rejected_slashed_and_validators_paid_as_for_an_accept(
    marketplace, coordinator, token, timelock, requester, tolerant_request
):
    request, generator, validators = tolerant_request()
    treasury, wallet = token.balanceOf(timelock), token.balanceOf(requester)
    generate(marketplace, request, generator, output("a cheap answer"))
    receipt = vote(marketplace, request, [(validator, REJECT) for validator in validators])
    (refunded,) = receipt.decode_logs(marketplace.InferenceRefunded)
    assert refunded.reason == "the validators rejected the result"
    nodes_share = PRICE * NODE_SHARE_BPS // BPS
    assert refunded.amount == PRICE - nodes_share  # it saw the answer: the nodes' share is not refunded
    assert token.balanceOf(requester) == wallet + PRICE - nodes_share
    assert marketplace.balances(generator) == 0
    assert stake_of(coordinator, generator) == STAKE - TASK_BOND
    assert token.balanceOf(timelock) == treasury + TASK_BOND
    # Each validator earns what an accept would have paid it: its vote does not change its pay.
    assert [marketplace.balances(validator) for validator in validators] == [nodes_share // 3] * 2
    assert [stake_of(coordinator, validator) for validator in validators] == [STAKE] * 2
    assert marketplace.requestStatus(request.id) == REFUNDED
    assert_all_free(coordinator, [generator, *validators])


def test_generator__changes_its_answer_after_submitting__reverts(marketplace, tolerant_request):
    request, generator, _ = tolerant_request()
    generate(marketplace, request, generator)
    with reverts_with("ModelMarketplaceAlreadySubmitted", node=generator.address):
        generate(marketplace, request, generator, output("another answer"))


def test_generator__votes_for_its_own_answer__reverts(marketplace, tolerant_request):
    request, generator, _ = tolerant_request()
    generate(marketplace, request, generator)
    with reverts_with("ModelMarketplaceGeneratorSubmits"):
        commit(marketplace, request, generator, ANSWER)


def test_generator__submits_after_the_deadline__reverts(marketplace, chain, tolerant_request):
    request, generator, _ = tolerant_request()
    past_deadline(chain, request)
    with reverts_with("ModelMarketplaceDeadlinePassed"):
        generate(marketplace, request, generator)


def test_generator__stays_silent__slashed_as_silent_and_requester_fully_refunded(
    marketplace, coordinator, chain, outsider, requester, token, tolerant_request
):
    request, generator, validators = tolerant_request()
    wallet = token.balanceOf(requester)
    past_vote_window(marketplace, chain, request)
    with reverts_with("ModelMarketplaceDeadlineNotPassed"):
        marketplace.closeExpired(request, sender=outsider)  # the validators' reveal window is still open
    past_votes_reveal_window(marketplace, chain, request)
    receipt = marketplace.closeExpired(request, sender=outsider)
    (refunded,) = receipt.decode_logs(marketplace.InferenceRefunded)
    assert (refunded.amount, refunded.reason) == (PRICE, "no result was submitted")
    assert token.balanceOf(requester) == wallet + PRICE
    (missed,) = receipt.decode_logs(coordinator.DeadlineMissed)
    assert missed.node == generator.address
    assert [stake_of(coordinator, node) for node in (generator, *validators)] == [STAKE - TASK_BOND, STAKE, STAKE]
    assert_all_free(coordinator, [generator, *validators])


# ---- a validator cheats ----


def test_validator__votes_before_the_generator_submitted__reverts(marketplace, tolerant_request):
    request, _, validators = tolerant_request()
    with reverts_with("ModelMarketplaceNothingToValidate"):
        commit(marketplace, request, validators[0], ANSWER)


def test_validator__submits_an_answer_of_its_own__reverts(marketplace, outsider, tolerant_request):
    request, _, validators = tolerant_request()
    with reverts_with("ModelMarketplaceCommitRequired"):
        generate(marketplace, request, validators[0])
    with reverts_with("ModelMarketplaceNotAssigned", caller=outsider.address):
        generate(marketplace, request, outsider)


def test_lazy_validator__accepts_a_wrong_answer_the_majority_rejects__slashed(
    marketplace, coordinator, tolerant_request
):
    request, generator, validators = tolerant_request(quorum=4)
    lazy, honest = validators[0], validators[1:]
    generate(marketplace, request, generator, output("a wrong answer"))
    vote(marketplace, request, [(lazy, output("a wrong answer")), *[(validator, REJECT) for validator in honest]])
    assert stake_of(coordinator, lazy) == STAKE - TASK_BOND
    assert marketplace.balances(lazy) == 0
    assert [marketplace.balances(validator) for validator in honest] == [PRICE * NODE_SHARE_BPS // BPS // 4] * 2


def test_griefing_validator__rejects_an_honest_answer_the_majority_accepts__slashed_and_answer_settled(
    marketplace, coordinator, tolerant_request
):
    request, generator, validators = tolerant_request(quorum=4)
    griefer, honest = validators[0], validators[1:]
    generate(marketplace, request, generator)
    receipt = vote(marketplace, request, [(griefer, REJECT), *[(validator, ANSWER) for validator in honest]])
    (settled,) = receipt.decode_logs(marketplace.InferenceSettled)
    assert settled.outputCommitment == ANSWER
    per_node = PRICE * NODE_SHARE_BPS // BPS // 3  # the generator and the two that accepted
    assert [marketplace.balances(node) for node in (generator, *honest)] == [per_node] * 3
    assert marketplace.balances(griefer) == 0 and stake_of(coordinator, griefer) == STAKE - TASK_BOND


def test_griefing_validator__ties_with_an_honest_one__nobody_paid_nor_slashed(
    marketplace, coordinator, requester, token, tolerant_request
):
    """With an even number of validators a tie decides nothing: a model owner who wants one
    validator's lie to cost it picks an odd number (quorum 2, 4...). Documented in the protocol."""
    request, generator, validators = tolerant_request(quorum=3)
    generate(marketplace, request, generator)
    receipt = vote(marketplace, request, [(validators[0], REJECT), (validators[1], ANSWER)])
    (refunded,) = receipt.decode_logs(marketplace.InferenceRefunded)
    assert refunded.reason == "no majority among the validators"
    assert refunded.amount == PRICE - PRICE * NODE_SHARE_BPS // BPS
    assert [stake_of(coordinator, node) for node in (generator, *validators)] == [STAKE] * 3
    assert_all_free(coordinator, [generator, *validators])


def test_copying_validator__copies_the_other_validators_sealed_vote__cannot_reveal_and_slashed_as_silent(
    marketplace, coordinator, chain, outsider, tolerant_request
):
    request, generator, validators = tolerant_request(quorum=4)
    honest, copier = validators[:2], validators[2]
    generate(marketplace, request, generator)
    for validator in honest:
        commit(marketplace, request, validator, ANSWER)
    sealed = marketplace.resultOf(request.id, 1)
    assert sealed != ANSWER  # what a vote shows before the reveals: a seal bound to its validator
    marketplace.commitResult(request, sealed, sender=copier)
    for validator in honest:
        reveal(marketplace, request, validator, ANSWER)
    for salt in (model_key(f"salt:{request.id}:{honest[0].address}"), model_key("any")):
        with reverts_with("ModelMarketplaceRevealMismatch"):
            marketplace.revealResult(request, ANSWER, salt, "ipfs://copied", b"", sender=copier)
    past_votes_reveal_window(marketplace, chain, request)
    receipt = marketplace.closeExpired(request, sender=outsider)
    assert receipt.decode_logs(marketplace.InferenceSettled)[0].outputCommitment == ANSWER
    assert marketplace.balances(copier) == 0 and stake_of(coordinator, copier) == STAKE - TASK_BOND


def test_validator__votes_after_the_vote_window__reverts_and_is_slashed_as_silent(
    marketplace, coordinator, chain, outsider, tolerant_request
):
    request, generator, validators = tolerant_request(quorum=4)
    generate(marketplace, request, generator)
    for validator in validators[:2]:
        commit(marketplace, request, validator, ANSWER)
    # The generator's deadline has passed; the validators still have the vote window.
    past_deadline(chain, request)
    with reverts_with("ModelMarketplaceRevealNotOpen"):
        reveal(marketplace, request, validators[0], ANSWER)
    past_vote_window(marketplace, chain, request)
    with reverts_with("ModelMarketplaceDeadlinePassed"):
        commit(marketplace, request, validators[2], ANSWER)
    for validator in validators[:2]:
        reveal(marketplace, request, validator, ANSWER)
    past_votes_reveal_window(marketplace, chain, request)
    receipt = marketplace.closeExpired(request, sender=outsider)
    (missed,) = receipt.decode_logs(coordinator.DeadlineMissed)
    assert missed.node == validators[2].address
    assert marketplace.requestStatus(request.id) == SETTLED


def test_validator__declines_after_the_generator_submitted__reverts(marketplace, tolerant_request):
    request, generator, validators = tolerant_request()
    generate(marketplace, request, generator)
    with reverts_with("ModelMarketplaceResultsSubmitted"):
        marketplace.declineRequest(request, "I would rather not vote", sender=validators[0])


def test_validators__all_silent__slashed_and_generator_unpaid_but_free(
    marketplace, coordinator, chain, outsider, tolerant_request
):
    request, generator, validators = tolerant_request()
    generate(marketplace, request, generator)
    past_votes_reveal_window(marketplace, chain, request)
    receipt = marketplace.closeExpired(request, sender=outsider)
    assert receipt.decode_logs(marketplace.InferenceRefunded)[0].reason == "no majority among the validators"
    assert {event.node for event in receipt.decode_logs(coordinator.DeadlineMissed)} == {
        validator.address for validator in validators
    }
    assert stake_of(coordinator, generator) == STAKE and marketplace.balances(generator) == 0
    assert_all_free(coordinator, [generator, *validators])


# ---- property: whatever the votes, the judgement follows the validators' majority ----

VOTES = st.sampled_from(["accept", "reject", "silent"])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(quorum=st.integers(2, 4), submitted=st.booleans(), ballots=st.lists(VOTES, min_size=3, max_size=3))
def test_judgement__any_votes__majority_decides_and_every_joy_is_accounted_for(
    marketplace, coordinator, token, timelock, chain, outsider, requester, model_owner, tolerant_request,
    quorum, submitted, ballots,
):
    snapshot = chain.snapshot()
    try:
        request, generator, validators = tolerant_request(quorum)
        ballots = ballots[: quorum - 1]
        nodes = [generator, *validators]
        before = {
            "requester": token.balanceOf(requester), "treasury": token.balanceOf(timelock),
            "held": token.balanceOf(marketplace), "owner": marketplace.balances(model_owner),
        }
        voting = []
        if submitted:
            generate(marketplace, request, generator)
            voting = [(v, ANSWER if b == "accept" else REJECT) for v, b in zip(validators, ballots, strict=True) if b != "silent"]
            for validator, value in voting:
                commit(marketplace, request, validator, value)
            if len(voting) < quorum - 1:  # the reveals open once the silent validators' time is up
                past_vote_window(marketplace, chain, request)
            for validator, value in voting:
                reveal(marketplace, request, validator, value)
        if marketplace.requestStatus(request.id) not in (SETTLED, REFUNDED):
            past_votes_reveal_window(marketplace, chain, request)
            marketplace.closeExpired(request, sender=outsider)

        accepts = ballots.count("accept") if submitted else 0
        rejects = ballots.count("reject") if submitted else 0
        validators_count = quorum - 1
        nodes_share = PRICE * NODE_SHARE_BPS // BPS
        paid = {node.address: marketplace.balances(node) for node in nodes}
        slashed = {node.address for node in nodes if stake_of(coordinator, node) < STAKE}
        refund = token.balanceOf(requester) - before["requester"]
        if submitted and accepts * 2 > validators_count:
            assert marketplace.requestStatus(request.id) == SETTLED
            winners = {generator.address} | {v.address for v, b in zip(validators, ballots, strict=True) if b == "accept"}
            assert {a for a, amount in paid.items() if amount} == winners
            assert slashed == {node.address for node in nodes} - winners
            assert marketplace.balances(model_owner) - before["owner"] == PRICE * OWNER_SHARE_BPS // BPS
            assert refund == 0
        elif submitted and rejects * 2 > validators_count:
            assert marketplace.requestStatus(request.id) == REFUNDED
            winners = {v.address for v, b in zip(validators, ballots, strict=True) if b == "reject"}
            assert {a for a, amount in paid.items() if amount} == winners
            assert set(paid[a] for a in winners) == {nodes_share // quorum}
            assert slashed == {node.address for node in nodes} - winners
            assert refund == PRICE - nodes_share
        else:
            assert marketplace.requestStatus(request.id) == REFUNDED
            assert not any(paid.values())
            silent = {v.address for v, b in zip(validators, ballots, strict=True) if b == "silent" or not submitted}
            assert slashed == (silent if submitted else {generator.address})
            assert refund == (PRICE - nodes_share if submitted else PRICE)
        assert_all_free(coordinator, nodes)
        # Conservation: the escrow went to the requester, the credited balances and the
        # protocol's earnings; every slashed bond went to the treasury.
        credited = sum(paid.values()) + marketplace.balances(model_owner) - before["owner"]
        # Credited balances and the protocol's earnings stay in the marketplace.
        assert token.balanceOf(marketplace) == before["held"] - refund
        assert credited <= PRICE - refund
        assert token.balanceOf(timelock) - before["treasury"] == TASK_BOND * len(slashed)
    finally:
        chain.restore(snapshot)
