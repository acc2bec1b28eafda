"""``InferenceNode.execute_inference(..., use_iota=True)``: a feeless request and its answer over the
model's channel on the embedded ledger; the digits model's Groth16 proof travels in the answer and
the requester verifies it locally (snarkjs) before accepting; a private model is served only to a
holder of a valid credential."""

import asyncio
import copy
import time

import pytest

from joynet import InferenceNode
from joynet.channels import MessageType, SQLiteLedger
from joynet.identity.credentials import DIDIdentity, ModelAccessPolicy, ModelAccessRegistry
from joynet.feeless.errors import AccessDeniedError, ErrorKind, ProofRejectedError
from joynet.feeless.handler import circuit_request_id
from joynet.inference.errors import InferenceError, InvalidInputError
from joynet.models.package import publish_model
from joynet.models.builtin import write_digits_package
from joynet.storage import EmbeddedStore
from joynet.zk import QuantizedMLP
from joynet.zk.digits import load_split

NODE_SEED = "abandon " * 11 + "about"
REQUESTER_SEED = "legal winner thank year wave sausage worth useful legal winner thank yellow"
OWNER_SEED = "letter advice cage absurd amount doctor acoustic avoid letter advice cage above"
NODE_ADDRESS = "0x" + "42" * 20
SALT = "987654321987654321"


@pytest.fixture(autouse=True)
def ledger_path(monkeypatch, tmp_path):
    path = tmp_path / "channels.sqlite3"
    monkeypatch.setenv("JOYNET_CHANNEL_DB", str(path))
    return path


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return EmbeddedStore(tmp_path_factory.mktemp("ipfs"))


@pytest.fixture(scope="module")
def digits_cid(store, tmp_path_factory):
    return asyncio.run(publish_model(store, write_digits_package(tmp_path_factory.mktemp("pkg") / "digits")))


@pytest.fixture(scope="module")
def digit_inputs():
    _, pixels, _, labels = load_split()
    return [{"pixels": row, "salt": SALT} for row in pixels.tolist()[:3]]


def nodes(store, tmp_path):
    serving = InferenceNode(store=store, cache_dir=tmp_path / "models", iota_wallet_seed=NODE_SEED)
    requesting = InferenceNode(store=store, cache_dir=tmp_path / "req", iota_wallet_seed=REQUESTER_SEED)
    return serving, requesting


async def close(*nodes):
    for node in nodes:
        await node.close()


def test_execute_inference__use_iota_zk_model__output_with_locally_verified_proof_and_no_chain(
    store, digits_cid, digit_inputs, tmp_path, ledger_path
):
    async def scenario():
        serving, requesting = nodes(store, tmp_path)
        channel_id = await serving.open_model_channel("digits")
        served = asyncio.create_task(serving.serve_iota(channel_id, digits_cid, node_address=NODE_ADDRESS, max_requests=1))
        result = await requesting.execute_inference(digits_cid, digit_inputs[0], use_iota=True, channel_id=channel_id)
        assert await served == 1
        await close(serving, requesting)
        return channel_id, result

    channel_id, result = asyncio.run(scenario())
    inference = QuantizedMLP.load().forward(digit_inputs[0]["pixels"])
    assert result.output == {"class": inference.label, "logits": list(inference.logits)}
    assert int(result.proof["publicSignals"][2]) >> 224 == inference.label and len(result.proof_calldata) == 256
    packets = [m for m in SQLiteLedger(ledger_path).read(bytes.fromhex(channel_id[2:])) if m.type is MessageType.PACKET]
    assert len(packets) == 2 and all(m.masked for m in packets)  # input, output and proof never in the clear


def forged_answers(store, digits_cid, digit_inputs, tmp_path, forge):
    """The node proves honestly, then answers with ``forge(output, proof)``; the requester's verdict."""

    async def dishonest_node(serving, channel_id):
        handler = serving.iota_handler()
        request = await handler.next_request(channel_id, timeout=30)
        result = await serving.execute_inference(digits_cid, request.input, request_id=circuit_request_id(request.request_id),
                                                 node=NODE_ADDRESS)
        output, proof = forge({**result.output}, {"proof": copy.deepcopy(result.proof.proof),
                                                   "publicSignals": [str(s) for s in result.proof.public_signals]})
        await handler.send_response(channel_id, request.request_id, output, proof, node=NODE_ADDRESS)

    async def scenario():
        serving, requesting = nodes(store, tmp_path)
        channel_id = await serving.open_model_channel("digits")
        task = asyncio.create_task(dishonest_node(serving, channel_id))
        try:
            with pytest.raises(ProofRejectedError) as rejected:
                await requesting.execute_inference(digits_cid, digit_inputs[1], use_iota=True, channel_id=channel_id)
            await task
        finally:
            await close(serving, requesting)
        return str(rejected.value)

    return asyncio.run(scenario())


def test_execute_inference__use_iota_output_changed_after_proving__rejected(store, digits_cid, digit_inputs, tmp_path):
    def other_class(output, proof):
        return {**output, "class": (output["class"] + 1) % 10}, proof

    assert "outputBinding differ" in forged_answers(store, digits_cid, digit_inputs, tmp_path, other_class)


def test_execute_inference__use_iota_proof_points_tampered__rejected_by_snarkjs(store, digits_cid, digit_inputs, tmp_path):
    def bent_proof(output, proof):
        proof["proof"]["pi_a"][0] = str(int(proof["proof"]["pi_a"][0]) + 1)
        return output, proof

    assert "does not verify" in forged_answers(store, digits_cid, digit_inputs, tmp_path, bent_proof)


def test_execute_inference__use_iota_commitment_not_of_the_output__rejected(store, digits_cid, digit_inputs, tmp_path):
    def other_commitment(output, proof):  # the class and its proof are honest; the commitment is not
        return {**output, "outputCommitment": "0x" + ((output["class"] + 1) % 10).to_bytes(32, "big").hex()}, proof

    assert "does not commit to its output" in forged_answers(store, digits_cid, digit_inputs, tmp_path, other_commitment)


def test_execute_inference__use_iota_no_proof_for_zk_model__rejected(store, digits_cid, digit_inputs, tmp_path):
    assert "no Groth16 proof" in forged_answers(store, digits_cid, digit_inputs, tmp_path, lambda output, proof: (output, None))


# ---- declined requests: the answer's error_kind picks the error ----


def declined_answer(store, digits_cid, digit_inputs, tmp_path, error, error_kind):
    """The node declines the request with ``error`` of ``error_kind``; what the requester raises."""

    async def declining_node(serving, channel_id):
        handler = serving.iota_handler()
        request = await handler.next_request(channel_id, timeout=30)
        await handler.send_response(channel_id, request.request_id, None, node=NODE_ADDRESS, error=error,
                                    error_kind=error_kind)

    async def scenario():
        serving, requesting = nodes(store, tmp_path)
        channel_id = await serving.open_model_channel("digits")
        task = asyncio.create_task(declining_node(serving, channel_id))
        try:
            with pytest.raises(InferenceError) as declined:
                await requesting.execute_inference(digits_cid, digit_inputs[1], use_iota=True, channel_id=channel_id)
            await task
        finally:
            await close(serving, requesting)
        return declined.value

    return asyncio.run(scenario())


@pytest.mark.parametrize("error_kind, raised", [
    (ErrorKind.ACCESS_DENIED, AccessDeniedError), (ErrorKind.INVALID_INPUT, InvalidInputError),
    (ErrorKind.INFERENCE_FAILED, InferenceError), ("a_kind_of_a_newer_node", InferenceError), (None, InferenceError)])
def test_execute_inference__use_iota_declined_with_an_error_kind__error_of_that_kind(
        store, digits_cid, digit_inputs, tmp_path, error_kind, raised):
    declined = declined_answer(store, digits_cid, digit_inputs, tmp_path, "the node says no", error_kind)
    assert type(declined) is raised and str(declined) == "the node declined: the node says no"


def test_execute_inference__use_iota_message_starts_access_denied_but_kind_invalid_input__not_access_denied(
        store, digits_cid, digit_inputs, tmp_path):
    message = "access denied: pixels out of range"  # the text of the old prefix, the kind of bad input
    declined = declined_answer(store, digits_cid, digit_inputs, tmp_path, message, ErrorKind.INVALID_INPUT)
    assert not isinstance(declined, AccessDeniedError)
    assert type(declined) is InvalidInputError and str(declined) == f"the node declined: {message}"


def test_execute_inference__use_iota_input_the_model_does_not_take__invalid_input_error(
        store, digits_cid, tmp_path):
    async def scenario():
        serving, requesting = nodes(store, tmp_path)
        channel_id = await serving.open_model_channel("digits")
        served = asyncio.create_task(serving.serve_iota(channel_id, digits_cid, node_address=NODE_ADDRESS, max_requests=1))
        try:
            with pytest.raises(InferenceError) as declined:
                await requesting.execute_inference(digits_cid, {"pixels": [1, 2], "salt": SALT}, use_iota=True,
                                                   channel_id=channel_id)
            assert await served == 1
        finally:
            await close(serving, requesting)
        return declined.value

    declined = asyncio.run(scenario())
    assert type(declined) is InvalidInputError and str(declined).startswith("the node declined: ")


# ---- private models ----


def private_model_round(store, digits_cid, digit_inputs, tmp_path, ledger_path, credential_for):
    """A private digits model; the requester presents ``credential_for(owner, requester_did, registry)``."""
    owner = DIDIdentity.from_mnemonic(OWNER_SEED)
    requester_did = DIDIdentity.from_mnemonic(REQUESTER_SEED).did
    ledger = SQLiteLedger(ledger_path)
    registry = ModelAccessRegistry(ledger, owner, digits_cid)
    registry.mark_private()
    access = ModelAccessPolicy(ledger, owner.document(), digits_cid)
    credential = credential_for(owner, requester_did, registry)

    async def scenario():
        serving, requesting = nodes(store, tmp_path)
        channel_id = await serving.open_model_channel("private-digit_inputs", access=access)
        served = asyncio.create_task(serving.serve_iota(channel_id, digits_cid, node_address=NODE_ADDRESS, access=access,
                                                        max_requests=1, timeout=3))
        try:
            return await requesting.execute_inference(digits_cid, digit_inputs[2], use_iota=True, channel_id=channel_id,
                                                      credential=credential, timeout=3)
        finally:
            await served
            await close(serving, requesting)

    return asyncio.run(scenario())


def test_private_model__valid_credential__served(store, digits_cid, digit_inputs, tmp_path, ledger_path):
    def valid(owner, holder, registry):
        return owner.issue_model_access(holder, digits_cid, expires_at=int(time.time()) + 600)

    result = private_model_round(store, digits_cid, digit_inputs, tmp_path, ledger_path, valid)
    assert result.output["class"] == QuantizedMLP.load().forward(digit_inputs[2]["pixels"]).label


@pytest.mark.parametrize(
    "case, reason", [("expired", "the credential expired at"), ("foreign", "issued to .*, presented by"),
                     ("none", "no access credential presented")])
def test_private_model__expired_foreign_or_no_credential__refused_with_the_reason(
        store, digits_cid, digit_inputs, tmp_path, ledger_path, case, reason):
    def bad(owner, holder, registry):
        now = int(time.time())
        if case == "expired":
            return owner.issue_model_access(holder, digits_cid, expires_at=now - 1, not_before=now - 60)
        if case == "foreign":  # a genuine credential of the owner, issued to someone else
            return owner.issue_model_access(owner.did, digits_cid, expires_at=now + 600)
        return None

    with pytest.raises(AccessDeniedError, match=f"refused us: access denied: .*{reason}"):
        private_model_round(store, digits_cid, digit_inputs, tmp_path, ledger_path, bad)


def test_private_model__credential_revoked_after_admission__request_declined(
    store, digits_cid, digit_inputs, tmp_path, ledger_path, monkeypatch
):
    admits = ModelAccessPolicy.admits
    revocations = []

    def admit_then_revoke(policy, key, credential):
        admitted = admits(policy, key, credential)
        revocations[0].revoke("urn:uuid:gone")  # the owner revokes right after the node admitted the holder
        return admitted

    monkeypatch.setattr(ModelAccessPolicy, "admits", admit_then_revoke)

    def revoked_later(owner, holder, registry):
        revocations.append(registry)
        return owner.issue_model_access(holder, digits_cid, expires_at=int(time.time()) + 600, credential_id="urn:uuid:gone")

    with pytest.raises(AccessDeniedError, match="access denied: the credential urn:uuid:gone was revoked"):
        private_model_round(store, digits_cid, digit_inputs, tmp_path, ledger_path, revoked_later)
