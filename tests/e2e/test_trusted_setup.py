"""`joynet ceremony` and the DAO's rule for circuits, on a tiny circuit compiled here (circom2)
with a 2^4 powers of tau made here: two contributors and a beacon give a zkey whose proofs verify
with snarkjs and on anvil through the exported verifier; every tampering with the transcript or
the files is caught with one line; `joynet gov propose-circuit` pins the ceremony and the voter
supports the registration only when its transcript verifies and is the proposed verifier's."""

import asyncio
import hashlib
import json
import shutil
import subprocess
from types import SimpleNamespace

import pytest
from eth_utils import keccak
from helpers import PROJECT_ROOT

from joynet.chain.dao import GovernanceError, ModelGovernanceDAO, ProposalState, VoteType
from joynet.chain.dao import proposals as chain_proposals
from joynet.cli import main
from joynet.governance.circuits import CeremonyCheck, circuit_description, publish_ceremony
from joynet.governance.proposals import propose_checked
from joynet.governance.voter import ContractDirectory, DaoVoter, VoterPolicy
from joynet.storage import EmbeddedStore
from joynet.zk.ceremony import sha256_file, snarkjs, verify_ceremony
from joynet.zk.poseidon import SNARK_SCALAR_FIELD
from joynet.zk.prover import ZK_VERIFIER_LAYOUT, encode_calldata, output_binding, solidity_proof

# The session's contracts first: a session fixture set up after this module's fixtures would make
# Ape re-run them (the circuits and ceremonies twice).
pytestmark = pytest.mark.usefixtures("chain", "deployment", "token", "dao", "timelock", "zk_verifier", "deployer", "alice",
                                      "bob", "carol")
BEACON = "0x" + keccak(text="block 123456").hex().removeprefix("0x")
# c = a * x + b with x private: the three public inputs are ZKVerifier's [weights, input, binding].
TINY = """pragma circom 2.0.0;
template Tiny() {
    signal input a;
    signal input b;
    signal input c;
    signal input x;
    signal y;
    y <== a * x;
    c === y + b;
}
component main {public [a, b, c]} = Tiny();
"""
OTHER = TINY.replace("y <== a * x;", "signal s;\n    s <== x * x;\n    y <== a * s;")


@pytest.fixture(scope="module")
def circuits(tmp_path_factory):
    """The tiny circuit and another one (R1CS + wasm), and a 2^4 powers of tau for both."""
    work = tmp_path_factory.mktemp("circuits")
    cli = PROJECT_ROOT / "node_modules" / "circom2" / "cli.js"
    for name, source in (("tiny", TINY), ("other", OTHER)):
        (work / f"{name}.circom").write_text(source)  # circom2 sees only its working directory
        subprocess.run(["node", str(cli), f"{name}.circom", "--r1cs", "--wasm", "--O2", "-o", "."],
                       cwd=work, check=True, capture_output=True)
    snarkjs("powersoftau", "new", "bn128", "4", work / "pot_0.ptau")  # 2^4 >= constraints + public inputs + 1
    snarkjs("powersoftau", "contribute", work / "pot_0.ptau", work / "pot_1.ptau", "--name=test", "-e=test phase 1")
    snarkjs("powersoftau", "prepare", "phase2", work / "pot_1.ptau", work / "pot4.ptau")
    return SimpleNamespace(dir=work, r1cs=work / "tiny.r1cs", wasm=work / "tiny_js" / "tiny.wasm",
                           other_r1cs=work / "other.r1cs", ptau=work / "pot4.ptau")


def run_joynet(capsys, *args):
    capsys.readouterr()
    status = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return SimpleNamespace(status=status, out=captured.out, err=captured.err)


def refused(finished, message):
    assert finished.status == 1, finished
    assert finished.err.startswith("joynet: error: ") and message in finished.err, finished.err
    assert finished.err.count("\n") == 1 and finished.out == "", finished


def ceremony_of(r1cs, ptau, directory, contributors, export=True):
    for args in (["init", r1cs, ptau, "-o", directory],
                 *(["contribute", directory, "--name", name] for name in contributors),
                 ["beacon", directory, "--beacon", BEACON, "--iterations", "10"],
                 *([["export", directory]] if export else [])):
        assert main(["ceremony", *map(str, args)]) == 0, args
    return directory


@pytest.fixture(scope="module")
def ceremony(circuits, tmp_path_factory):
    """The tiny circuit's ceremony: alice, bob, the beacon; exported."""
    return ceremony_of(circuits.r1cs, circuits.ptau, tmp_path_factory.mktemp("ceremony") / "tiny", ["alice", "bob"])


@pytest.fixture(scope="module")
def other_ceremony(circuits, tmp_path_factory):
    """The other circuit's ceremony: carol, dave, the beacon (not exported)."""
    return ceremony_of(circuits.other_r1cs, circuits.ptau, tmp_path_factory.mktemp("ceremony") / "other", ["carol", "dave"],
                       export=False)


@pytest.fixture
def copy(ceremony, tmp_path):
    """A copy of the ceremony to tamper with, and its transcript to edit."""
    directory = shutil.copytree(ceremony, tmp_path / "copy")
    path = directory / "transcript.json"

    def edit(change):
        transcript = json.loads(path.read_text())
        change(transcript)
        path.write_text(json.dumps(transcript))

    return SimpleNamespace(dir=directory, edit=edit)


def prove(circuits, zkey, a, b, c, tmp_path):
    """A snarkjs proof that c = a * x + b (x solved in the field); (proof, public signals)."""
    x = (c - b) * pow(a, -1, SNARK_SCALAR_FIELD) % SNARK_SCALAR_FIELD
    (tmp_path / "input.json").write_text(json.dumps({"a": str(a), "b": str(b), "c": str(c), "x": str(x)}))
    snarkjs("groth16", "fullprove", tmp_path / "input.json", circuits.wasm, zkey, tmp_path / "proof.json",
            tmp_path / "public.json")
    return json.loads((tmp_path / "proof.json").read_text()), json.loads((tmp_path / "public.json").read_text())


@pytest.fixture(scope="module")
def tiny_verifier(ceremony, deployer):
    """The ceremony's exported Solidity verifier, compiled (solc-js, standard JSON, as the
    project's contracts) and deployed."""
    from ape.contracts import ContractContainer
    from ethpm_types import ContractType

    request = {"language": "Solidity", "sources": {"Verifier.sol": {"content": (ceremony / "Verifier.sol").read_text()}},
               "settings": {"optimizer": {"enabled": True, "runs": 200},
                            "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}}}}
    compiled = subprocess.run(["node", str(PROJECT_ROOT / "toolchain" / "solc-shim.js"), "--standard-json"],
                              input=json.dumps(request), capture_output=True, text=True, check=True, cwd=PROJECT_ROOT)
    output = json.loads(compiled.stdout)["contracts"]["Verifier.sol"]["Groth16Verifier"]
    contract_type = ContractType.model_validate({"contractName": "Groth16Verifier", "abi": output["abi"],
                                                 "deploymentBytecode": {"bytecode": "0x" + output["evm"]["bytecode"]["object"]}})
    return deployer.deploy(ContractContainer(contract_type))


# ---- the ceremony ----


def test_ceremony__two_contributors_and_beacon__proofs_verify_with_snarkjs_and_on_chain(
        ceremony, circuits, tiny_verifier, tmp_path, capsys):
    verified = run_joynet(capsys, "ceremony", "verify", ceremony)
    assert verified.status == 0, verified.err
    result = json.loads(verified.out)
    assert [step["name"] for step in result["contributions"]] == ["alice", "bob", "beacon"]
    transcript = json.loads((ceremony / "transcript.json").read_text())
    assert [step["kind"] for step in transcript["steps"]] == ["new", "contribution", "contribution", "beacon"]
    assert transcript["steps"][-1]["beacon"] == BEACON.removeprefix("0x") and transcript["steps"][-1]["iterations"] == 10

    final = ceremony / transcript["steps"][-1]["zkey"]
    proof, public = prove(circuits, final, 7, 11, 7 * 5 + 11, tmp_path)
    assert "OK" in snarkjs("groth16", "verify", ceremony / "verification_key.json", tmp_path / "public.json",
                           tmp_path / "proof.json")
    signals = [int(value) for value in public]
    assert tiny_verifier.verifyProof(*solidity_proof(proof), signals)
    assert not tiny_verifier.verifyProof(*solidity_proof(proof), [signals[0], signals[1], signals[2] + 1])


def test_ceremony_contribute__same_zkey_and_name__entropy_from_the_system_differs(copy, capsys):
    hashes = set()
    for _ in range(2):
        copy.edit(lambda transcript: transcript["steps"].pop())  # reopen after bob
        contributed = run_joynet(capsys, "ceremony", "contribute", copy.dir, "--name", "dave")
        assert contributed.status == 0, contributed.err
        hashes.add(json.loads(contributed.out)["contribution_hash"])
    assert len(hashes) == 2


def _swap_steps(transcript):
    steps = transcript["steps"]
    steps[1], steps[2] = steps[2], steps[1]
    steps[1]["index"], steps[2]["index"] = 1, 2


def _remove_and_renumber(transcript):
    del transcript["steps"][1]
    for index, step in enumerate(transcript["steps"]):
        step["index"] = index


def _name_mallory(transcript):
    fake = dict(transcript["steps"][1], name="mallory", contribution_hash="ab" * 64)
    transcript["steps"].insert(2, fake)
    for index, step in enumerate(transcript["steps"]):
        step["index"] = index


@pytest.mark.parametrize("tamper, message", [
    (_name_mallory, "transcript step 2 (mallory) has contribution hash abab"),
    (_swap_steps, "transcript step 1 (bob) has contribution hash"),
    (_remove_and_renumber, "transcript step 1 (bob) has contribution hash"),
    (lambda t: t["steps"].pop(1), "transcript step 1 is numbered 2: steps removed or reordered"),
    (lambda t: t["steps"][-1].update(beacon="11" * 32), "the beacon recorded (1111111111111111..., 2^10) is not the zkey's"),
], ids=["contribution-not-in-zkey", "reordered", "removed", "removed-gap", "beacon"])
def test_ceremony_verify__transcript_tampered__one_line_reason(copy, capsys, tamper, message):
    copy.edit(tamper)
    refused(run_joynet(capsys, "ceremony", "verify", copy.dir), message)


def test_ceremony_verify__zkey_swapped_for_another_circuits__caught_by_hash_then_by_snarkjs(
        copy, other_ceremony, capsys):
    other = json.loads((other_ceremony / "transcript.json").read_text())["steps"][-1]
    final = json.loads((copy.dir / "transcript.json").read_text())["steps"][-1]
    shutil.copyfile(other_ceremony / other["zkey"], copy.dir / final["zkey"])
    refused(run_joynet(capsys, "ceremony", "verify", copy.dir), "is not the zkey the transcript's last step recorded")

    copy.edit(lambda transcript: transcript["steps"][-1].update(zkey_sha256=other["zkey_sha256"]))
    refused(run_joynet(capsys, "ceremony", "verify", copy.dir), "snarkjs zkey verify failed")


@pytest.mark.parametrize("tamper, message", [
    (lambda d, c: shutil.copyfile(c.other_r1cs, d / "circuit.r1cs"), "is not the circuit of the transcript"),
    (lambda d, c: (d / "verification_key.json").write_text("{}"), "is not the final zkey's verification key"),
    (lambda d, c: (d / "Verifier.sol").write_text((d / "Verifier.sol").read_text().replace("alphax  = ", "alphax  = 1")),
     "the Solidity verifier's alphax is not the ceremony's verification key"),
    (lambda d, c: (d / "zkeys" / "0003.zkey").unlink(), "final zkey"),
], ids=["r1cs", "verification-key", "solidity-verifier", "zkey-missing"])
def test_ceremony_verify__files_tampered__one_line_reason(copy, circuits, capsys, tamper, message):
    tamper(copy.dir, circuits)
    refused(run_joynet(capsys, "ceremony", "verify", copy.dir), message)


def test_ceremony_verify__other_ptau__refused(copy, circuits, capsys):
    refused(run_joynet(capsys, "ceremony", "verify", copy.dir, "--ptau", circuits.dir / "pot_1.ptau"),
            "is not the powers of tau of the transcript")


def test_ceremony_steps__refused__one_line_and_transcript_unchanged(copy, circuits, tmp_path, capsys):
    before = (copy.dir / "transcript.json").read_text()
    refused(run_joynet(capsys, "ceremony", "contribute", copy.dir, "--name", "eve"), "the ceremony is closed")
    refused(run_joynet(capsys, "ceremony", "beacon", copy.dir, "--beacon", "0x12"), "the ceremony is closed")
    copy.edit(lambda transcript: transcript["steps"].pop())
    shutil.copyfile(copy.dir / "zkeys" / "0001.zkey", copy.dir / "zkeys" / "0002.zkey")  # not bob's zkey
    refused(run_joynet(capsys, "ceremony", "contribute", copy.dir, "--name", "eve"),
            "is not the zkey step 2 recorded (sha256 differs)")
    refused(run_joynet(capsys, "ceremony", "beacon", copy.dir, "--beacon", "block hash"), "--beacon must be hex bytes")
    refused(run_joynet(capsys, "ceremony", "init", tmp_path / "none.r1cs", circuits.ptau, "-o", tmp_path / "c"),
            "does not exist")
    refused(run_joynet(capsys, "ceremony", "init", circuits.ptau, circuits.ptau, "-o", tmp_path / "c"),
            "is not an R1CS file")
    refused(run_joynet(capsys, "ceremony", "init", circuits.r1cs, circuits.ptau, "-o", copy.dir), "already holds a ceremony")
    refused(run_joynet(capsys, "ceremony", "verify", tmp_path), "transcript.json is missing")
    assert json.loads(before)["steps"][:-1] == json.loads((copy.dir / "transcript.json").read_text())["steps"]


# ---- the DAO's rule ----


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return EmbeddedStore(tmp_path_factory.mktemp("ceremony-ipfs"))


@pytest.fixture
def ceremony_cli_env(deployment, store, chain, tmp_path):
    deployment.save(tmp_path / f"{chain.provider.network.name}.json")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JOYNET_DEPLOYMENTS_DIR", str(tmp_path))
        patch.setenv("JOYNET_IPFS_DIR", str(store.directory))
        for name in ("JOYNET_ACCOUNT", "JOYNET_IPFS_API", "JOYNET_NETWORK"):
            patch.delenv(name, raising=False)
        yield


def registration_policy(ptau=None, min_contributions=2):
    """A voter policy that supports circuit registrations made with the powers of tau ``ptau``."""
    return VoterPolicy.from_mapping({
        "otherwise": "against",
        "supports": [{"contract": "ProofOfInference", "function": "registerCircuit"}],
        "ceremonies": {"ptau_sha256": [sha256_file(ptau)] if ptau else [], "min_contributions": min_contributions},
    })


@pytest.fixture
def voter(deployment, dao, token, store, alice, chain, circuits):
    """The voter agent's DaoVoter with a policy that supports circuit registrations made with
    the session's powers of tau."""
    directory = ContractDirectory.from_deployment(deployment)
    policy = registration_policy(circuits.ptau)
    client = ModelGovernanceDAO(dao.address, account=alice)
    check = CeremonyCheck(store, lambda address: bytes(chain.provider.get_code(address)), policy.ceremonies)
    return DaoVoter(policy, client, token, directory, log=lambda _: None, ceremonies=check)


def decide(voter, deployment, proposal_id):
    """The voter's decision on the proposal, from its ProposalCreated log."""
    (created,) = [log for log in chain_proposals(voter.dao.contract, deployment.start_block) if log.proposalId == proposal_id]
    asyncio.run(voter.consider(created))
    return voter.pending[proposal_id].decision


def exported_circuit_id(ceremony):
    """The circuit id of the exported ceremony: the sha256 of its verification key file."""
    return hashlib.sha256((ceremony / "verification_key.json").read_bytes()).digest()


def register_call(zk_verifier, circuit_id, verifier):
    return zk_verifier.registerCircuit.encode_input(circuit_id, verifier, ZK_VERIFIER_LAYOUT)


def test_gov_propose_circuit__verified_ceremony__voter_supports_and_circuit_proves_on_chain(
        ceremony_cli_env, ceremony, circuits, tiny_verifier, voter, voters, governance, zk_verifier, deployment, store,
        tmp_path, capsys):
    proposed = run_joynet(capsys, "gov", "propose-circuit", ceremony, "--verifier", tiny_verifier.address,
                          "--title", "Tiny circuit", "--account", "test:1")
    assert proposed.status == 0, proposed.err
    answer = json.loads(proposed.out)
    transcript, circuit_id = json.loads((ceremony / "transcript.json").read_text()), exported_circuit_id(ceremony)
    assert answer["circuit_id"] == "0x" + circuit_id.hex()
    assert answer["zkey_sha256"] == transcript["steps"][-1]["zkey_sha256"]
    record = json.loads(asyncio.run(store.cat(answer["transcript"])))
    assert record["transcript"] == transcript and set(record["files"]) == {"r1cs", "ptau", "zkey"}

    proposal_id = int(answer["proposal"], 16)
    decision = decide(voter, deployment, proposal_id)
    assert decision.support is VoteType.For, decision.reason

    alice, bob, _ = voters
    governance.chain.mine(governance.dao.votingDelay() + 1)
    assert governance.vote(proposal_id, [(alice, 1), (bob, 1)]) is ProposalState.Succeeded
    (created,) = [log for log in chain_proposals(governance.dao, deployment.start_block) if log.proposalId == proposal_id]
    assert created.description == (f"Tiny circuit\n\nceremony-transcript: {answer['transcript']}\n"
                                   f"final-zkey-sha256: {answer['zkey_sha256']}\ncircuit-id: {answer['circuit_id']}\n")
    description = created.description
    calls = [zk_verifier.address], [0], [register_call(zk_verifier, circuit_id, tiny_verifier.address)]
    governance.dao.queue(*calls, keccak(text=description), sender=alice)
    governance.wait_timelock()
    governance.dao.execute(*calls, keccak(text=description), sender=alice)
    assert zk_verifier.circuitOf(circuit_id).verifier == tiny_verifier.address

    weights, inputs, node, request_id = 7, 11, alice.address, 42
    binding = output_binding(3, request_id, node)
    proof, _ = prove(circuits, ceremony / transcript["steps"][-1]["zkey"], weights, inputs, binding, tmp_path)
    args = (circuit_id, weights.to_bytes(32, "big"), inputs.to_bytes(32, "big"), (3).to_bytes(32, "big"),
            request_id, node)
    assert zk_verifier.verifyInference(*args, encode_calldata(proof))
    assert not zk_verifier.verifyInference(*args[:4], request_id + 1, node, encode_calldata(proof))


def test_voter__registration_without_transcript__votes_against(
        ceremony, tiny_verifier, voter, voters, zk_verifier, deployment, dao, alice):
    circuit_id = exported_circuit_id(ceremony)
    receipt = dao.propose([zk_verifier.address], [0], [register_call(zk_verifier, circuit_id, tiny_verifier.address)],
                          "Register the tiny circuit (trust me)", sender=alice)
    (created,) = receipt.decode_logs(dao.ProposalCreated)
    decision = decide(voter, deployment, created.proposalId)
    assert decision.support is VoteType.Against
    assert "no ceremony transcript in the description" in decision.reason


@pytest.fixture(scope="module")
def published(ceremony, other_ceremony, circuits, store):
    """The record CIDs of both ceremonies, and of a tiny-circuit record whose transcript is altered."""
    tiny, other = verify_ceremony(ceremony), verify_ceremony(other_ceremony)
    forged = dict(tiny.transcript, steps=[dict(step) for step in tiny.transcript["steps"]])
    forged["steps"][1]["name"] = "mallory"
    return SimpleNamespace(
        tiny=tiny, other=other,
        tiny_cid=asyncio.run(publish_ceremony(store, ceremony, tiny, circuits.ptau)),
        other_cid=asyncio.run(publish_ceremony(store, other_ceremony, other, circuits.ptau)),
        forged_cid=asyncio.run(publish_ceremony(store, ceremony, SimpleNamespace(**{**tiny.__dict__, "transcript": forged}),
                                                circuits.ptau)),
    )


def _other_record(p):
    return circuit_description("Tiny", p.other_cid, p.other), p.tiny.circuit_id


def _other_zkey_hash(p):
    return circuit_description("Tiny", p.tiny_cid, p.tiny).replace(p.tiny.zkey_sha256, p.other.zkey_sha256), p.tiny.circuit_id


def _forged(p):
    return circuit_description("Tiny", p.forged_cid, p.tiny), p.tiny.circuit_id


def _missing_record(p):
    return circuit_description("Tiny", "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG", p.tiny), p.tiny.circuit_id


@pytest.mark.parametrize("proposal, reason", [
    (_other_record, "circuitId is not the ceremony's"),
    (_other_zkey_hash, "the transcript's final zkey is"),
    (_forged, "transcript step 1 is named 'mallory', the zkey's 'alice'"),
    (_missing_record, "does not verify"),
], ids=["another-ceremony", "another-zkey-hash", "forged-transcript", "record-missing"])
def test_voter__registration_with_transcript_of_another_zkey_or_forged__votes_against(
        published, tiny_verifier, voter, voters, zk_verifier, deployment, dao, alice, proposal, reason):
    description, circuit_id = proposal(published)
    receipt = dao.propose([zk_verifier.address], [0], [register_call(zk_verifier, circuit_id, tiny_verifier.address)],
                          description, sender=alice)
    (created,) = receipt.decode_logs(dao.ProposalCreated)
    decision = decide(voter, deployment, created.proposalId)
    assert decision.support is VoteType.Against and reason in decision.reason, decision.reason


def test_voter__verified_ceremony_but_another_verifier__votes_against(
        published, voter, voters, zk_verifier, deployment, dao, alice):
    digits_verifier = deployment.address("DigitsMLPVerifier")
    description = circuit_description("Tiny", published.tiny_cid, published.tiny)
    receipt = dao.propose([zk_verifier.address], [0],
                          [register_call(zk_verifier, published.tiny.circuit_id, digits_verifier)], description, sender=alice)
    (created,) = receipt.decode_logs(dao.ProposalCreated)
    decision = decide(voter, deployment, created.proposalId)
    assert decision.support is VoteType.Against
    assert f"the verifier at {digits_verifier} is not the ceremony's" in decision.reason


@pytest.mark.parametrize("accepted_ptau, min_contributions, reason", [
    (False, 2, "is not one the policy accepts (ceremonies.ptau_sha256)"),
    (True, 3, "2 contribution(s), the policy asks for 3"),
], ids=["powers-of-tau-not-accepted", "too-few-contributions"])
def test_voter__verified_ceremony_short_of_the_policy__votes_against(
        published, circuits, tiny_verifier, voter, voters, zk_verifier, deployment, dao, alice,
        accepted_ptau, min_contributions, reason):
    voter.policy = registration_policy(circuits.ptau if accepted_ptau else None, min_contributions)
    voter.ceremonies.rules = voter.policy.ceremonies
    description = circuit_description("Tiny", published.tiny_cid, published.tiny)
    receipt = dao.propose([zk_verifier.address], [0],
                          [register_call(zk_verifier, published.tiny.circuit_id, tiny_verifier.address)], description,
                          sender=alice)
    (created,) = receipt.decode_logs(dao.ProposalCreated)
    decision = decide(voter, deployment, created.proposalId)
    assert decision.support is VoteType.Against and reason in decision.reason, decision.reason


def test_gov_propose_circuit__refused__one_line_and_nothing_proposed(
        ceremony_cli_env, ceremony, copy, tiny_verifier, deployment, dao, alice, capsys):
    before = len(chain_proposals(dao, deployment.start_block))
    copy.edit(lambda transcript: transcript["steps"][-1].update(beacon="22" * 32))
    refused(run_joynet(capsys, "gov", "propose-circuit", copy.dir, "--verifier", tiny_verifier.address,
                       "--account", "test:1"), "the ceremony does not verify: the beacon recorded")
    refused(run_joynet(capsys, "gov", "propose-circuit", ceremony, "--verifier", deployment.address("DigitsMLPVerifier"),
                       "--account", "test:1"), "is not the ceremony's verifier: its code lacks the verification key's")
    circuit_id = "0x" + exported_circuit_id(ceremony).hex()
    refused(run_joynet(capsys, "gov", "propose", "--description", "bare", "--account", "test:1", "--call",
                       f"ProofOfInference.registerCircuit({circuit_id}, {tiny_verifier.address}, 0x000102)"),
            "a circuit registration needs its ceremony transcript: use joynet gov propose-circuit")
    with pytest.raises(GovernanceError, match="a circuit registration needs its ceremony transcript"):  # ape run governance
        asyncio.run(propose_checked(ModelGovernanceDAO(dao.address, account=alice), deployment, [
            f"ProofOfInference.registerCircuit({circuit_id}, {tiny_verifier.address}, 0x000102)"], "bare"))
    (copy.dir / "Verifier.sol").unlink()
    refused(run_joynet(capsys, "gov", "propose-circuit", copy.dir, "--verifier", tiny_verifier.address,
                       "--account", "test:1"), "run joynet ceremony export first")
    assert len(chain_proposals(dao, deployment.start_block)) == before
