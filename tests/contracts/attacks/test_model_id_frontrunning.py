"""Attack: taking a model id by front-running its registration.

The attacker watches the mempool. When a model owner's ``registerModel`` appears, it sends its
own registration of the same id ahead of it, so that it owns the name the owner announced (and
the owner's users pay the attacker's model).

Rule: model ids cannot be taken by front-running. A registration needs a commitment,
keccak256(abi.encode(modelId, owner, salt)), made in an earlier block: copying the owner's
registration finds no commitment for the attacker (it binds the owner's address), and an
attacker who commits once it sees the registration can register from the next block only, after
the owner's registration has landed.

Old code (43cec05): registerModel had no commitment. The attacker's registration of the id,
mined first, made it the model's owner and the owner's own registration reverted
(ModelMarketplaceModelExists).

A variant found while writing these tests: commitModelRegistration kept one block per
commitment hash, for whoever sent it. The owner's pending registration shows its commitment
hash (modelId, owner and salt are in its calldata); an attacker who re-committed that hash
ahead of it in the same block made it revert (too early), committed its own in that block and
registered first in the next. Commitments are now kept per committer (the last test).
"""

import pytest

from helpers.adversary import ZERO32, ZERO_ADDRESS, in_one_block, revert_name
from helpers.chain_asserts import reverts_with
from joynet.chain.deploy import JOY
from joynet.chain.marketplace import model_key, registration_commitment

MODEL = model_key("joy-llm-7b")
OWNER_SALT, ATTACKER_SALT = model_key("the owner's secret"), model_key("the attacker's secret")
POLICY = (1, ZERO32, 0, False)


def registration(marketplace, salt, uri):
    """The arguments of registerModel for MODEL."""
    return (MODEL, uri, model_key("weights"), 5 * JOY, POLICY, ZERO32, salt)


@pytest.fixture
def victim(marketplace, model_owner):
    """The model owner, committed (in an earlier block) to registering MODEL."""
    marketplace.commitModelRegistration(registration_commitment(MODEL, model_owner.address, OWNER_SALT),
                                        sender=model_owner)
    return model_owner


@pytest.fixture
def attacker(outsider):
    return outsider


def test_register_model__attacker_copies_the_pending_registration_ahead_of_it__not_committed_and_owner_keeps_the_id(
    marketplace, chain, victim, attacker
):
    copied, owners = in_one_block(chain, [
        (attacker, marketplace.registerModel, registration(marketplace, OWNER_SALT, "ipfs://bafyattacker")),
        (victim, marketplace.registerModel, registration(marketplace, OWNER_SALT, "ipfs://bafyowner")),
    ])
    assert revert_name(copied) == "ModelMarketplaceRegistrationNotCommitted"
    assert not owners.failed
    assert marketplace.getModel(MODEL).owner == victim.address


def test_register_model__attacker_commits_and_registers_in_the_owners_block__too_early_and_owner_lands_first(
    marketplace, chain, victim, attacker
):
    # What an attacker can do once it sees the id: commit to it, and register at once, both
    # ahead of the owner's registration.
    own_commitment = registration_commitment(MODEL, attacker.address, ATTACKER_SALT)
    committed, early, owners = in_one_block(chain, [
        (attacker, marketplace.commitModelRegistration, (own_commitment,)),
        (attacker, marketplace.registerModel, registration(marketplace, ATTACKER_SALT, "ipfs://bafyattacker")),
        (victim, marketplace.registerModel, registration(marketplace, OWNER_SALT, "ipfs://bafyowner")),
    ])
    assert not committed.failed
    assert revert_name(early) == "ModelMarketplaceRegistrationNotCommitted"
    assert not owners.failed and marketplace.getModel(MODEL).owner == victim.address
    # From the next block its commitment would be old enough, but the id is taken.
    with reverts_with("ModelMarketplaceModelExists"):
        marketplace.registerModel(*registration(marketplace, ATTACKER_SALT, "ipfs://bafyattacker"), sender=attacker)
    assert marketplace.getModel(MODEL).owner == victim.address


def test_register_model__without_any_commitment__not_committed(marketplace, attacker):
    with reverts_with("ModelMarketplaceRegistrationNotCommitted"):
        marketplace.registerModel(*registration(marketplace, ATTACKER_SALT, "ipfs://bafyattacker"), sender=attacker)
    assert marketplace.getModel(MODEL).owner == ZERO_ADDRESS


def test_register_model__attacker_renews_the_owners_commitment_in_its_block__owner_still_keeps_the_id(
    marketplace, chain, victim, attacker
):
    # The owner's pending registration carries MODEL, OWNER_SALT and its sender: its commitment
    # hash is public. The attacker re-commits it in the registration's block, ahead of it (to
    # reset its block, so that the registration looks too early), and commits its own.
    owners_commitment = registration_commitment(MODEL, victim.address, OWNER_SALT)
    own_commitment = registration_commitment(MODEL, attacker.address, ATTACKER_SALT)
    renewed, committed, owners = in_one_block(chain, [
        (attacker, marketplace.commitModelRegistration, (owners_commitment,)),
        (attacker, marketplace.commitModelRegistration, (own_commitment,)),
        (victim, marketplace.registerModel, registration(marketplace, OWNER_SALT, "ipfs://bafyowner")),
    ])
    assert not renewed.failed and not committed.failed
    # Commitments are kept per committer: the attacker's copy is its own, the owner's stands.
    assert not owners.failed and marketplace.getModel(MODEL).owner == victim.address
    with reverts_with("ModelMarketplaceModelExists"):
        marketplace.registerModel(*registration(marketplace, ATTACKER_SALT, "ipfs://bafyattacker"), sender=attacker)
    assert marketplace.getModel(MODEL).owner == victim.address
