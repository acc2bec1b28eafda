"""Shared fixtures: named accounts, the protocol deployed by the same code as `ape run deploy`,
and a helper that carries a proposal through the whole governance lifecycle."""

import os
import socket

import pytest


def _free_local_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# The suite gets a chain of its own, on a free port, so that it never deploys into (or
# reverts snapshots of) a chain that a demo or agents are using at the default host.
# ape-foundry reads APE_FOUNDRY_HOST when it connects, which is after conftest is imported.
if "APE_FOUNDRY_HOST" not in os.environ:
    os.environ["APE_FOUNDRY_HOST"] = f"http://127.0.0.1:{_free_local_port()}"

from hypothesis import HealthCheck, Phase, settings  # noqa: E402

from joynet.chain.deploy import JOY, deploy_protocol, load_deploy_config  # noqa: E402
from joynet.chain.marketplace import Request, model_key, registration_commitment, seal_result  # noqa: E402
from helpers.ape_commands import run_ape  # noqa: E402
from helpers.governance import Governance  # noqa: E402
from helpers.other_chains import anvil, import_deployer_account, supernet_chain_id  # noqa: E402

# The suite's one Hypothesis profile. Chain-bound examples take milliseconds to seconds, so no
# deadline, and fixtures of Ape's isolation are function-scoped. No example database: the
# per-function tests are closures that would share one database key, and a failure prints its
# example anyway. No "explain" phase: it re-runs a failing example under a line tracer, which
# through Ape and web3 turns a failure report of seconds into minutes. Tests set only their
# example and step counts.
settings.register_profile(
    "joynet",
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.load_profile("joynet")


# ---- machine-wide caches ----


@pytest.fixture(scope="session")
def smollm2_cache(tmp_path_factory):
    """One model cache for every node that runs SmolLM2 in the session, as the nodes of one
    machine share theirs: the GGUF's conversion to transformers' format (about 25 s) is made once."""
    return tmp_path_factory.mktemp("smollm2-cache")


# ---- accounts ----


@pytest.fixture(scope="session")
def deployer(accounts):
    return accounts[0]


@pytest.fixture(scope="session")
def alice(accounts):
    return accounts[1]


@pytest.fixture(scope="session")
def bob(accounts):
    return accounts[2]


@pytest.fixture(scope="session")
def carol(accounts):
    return accounts[3]


@pytest.fixture(scope="session")
def outsider(accounts):
    """A funded account that holds no JOY and no role: it stands for anyone on the chain."""
    account = accounts.generate_test_account()
    accounts[0].transfer(account, "10 ether")
    return account


@pytest.fixture(scope="session")
def doomed_deployer(accounts):
    """Sends only deployments that must revert. Ape remembers which contract type lives at an
    address even after a test's snapshot is reverted; an account whose deployments never succeed
    never leaves such a record behind for the next test's reverting deployment to be decoded by."""
    account = accounts.generate_test_account()
    accounts[0].transfer(account, "10 ether")
    return account


# ---- the protocol ----


@pytest.fixture(scope="session")
def deploy_config():
    return load_deploy_config("local")


@pytest.fixture(scope="session")
def genesis_holders(accounts):
    """Ape's configured test accounts (not the ones generated later, like ``outsider``)."""
    return [accounts[index] for index in range(10)]


@pytest.fixture(scope="session")
def deployment(deployer, deploy_config, genesis_holders):
    return deploy_protocol(deployer, deploy_config, test_accounts=genesis_holders)


@pytest.fixture(scope="session")
def token(deployment):
    return deployment.contract("JoyToken")


@pytest.fixture(scope="session")
def timelock(deployment):
    return deployment.contract("TimelockController")


@pytest.fixture(scope="session")
def dao(deployment):
    return deployment.contract("ModelGovernanceDAO")


@pytest.fixture
def voters(token, alice, bob, carol):
    """Alice, Bob and Carol each hold 50M JOY (5 % of the supply) and delegate to themselves.
    Function-scoped: Ape reverts the delegations after each test, so other tests start undelegated."""
    for voter in (alice, bob, carol):
        token.invoke_transaction("delegate", voter, sender=voter)
    return alice, bob, carol


@pytest.fixture
def governance(dao, timelock, chain, voters):
    return Governance(dao, timelock, chain)


@pytest.fixture(scope="session")
def joy():
    """Whole JOY to wei."""
    return lambda amount: amount * JOY


# ---- a production network: an anvil with the supernet's chain id ----

SUPERNET_DEPLOYER = "supernet_deployer"
SUPERNET_PASSPHRASE = "correct horse"


@pytest.fixture
def deployments_dir(tmp_path):
    return tmp_path / "deployments"


@pytest.fixture
def supernet_anvil():
    """An anvil with the supernet's chain id, standing in for a Polygon Supernet RPC; yields
    (url, chain id)."""
    chain_id = supernet_chain_id()
    with anvil(chain_id) as url:
        yield url, chain_id


@pytest.fixture
def ape_data_folder(tmp_path):
    """A throw-away Ape data folder holding one imported deployer account (anvil's first key)."""
    folder = tmp_path / "ape-data"
    import_deployer_account(folder, SUPERNET_DEPLOYER, SUPERNET_PASSPHRASE)
    return folder


@pytest.fixture
def supernet_deploy(supernet_anvil, ape_data_folder, deployments_dir):
    """Runs `ape run deploy --network polygon:supernet:node --account supernet_deployer --yes`
    against ``supernet_anvil``, as an operator would; returns the finished process."""
    url, _ = supernet_anvil

    def deploy(*extra):
        env = {
            "POLYGON_SUPERNET_RPC": url,
            "APE_DATA_FOLDER": str(ape_data_folder),
            f"APE_ACCOUNTS_{SUPERNET_DEPLOYER}_PASSPHRASE": SUPERNET_PASSPHRASE,
            "JOYNET_DEPLOYMENTS_DIR": str(deployments_dir),
        }
        return run_ape(
            ["run", "deploy", "--network", "polygon:supernet:node", "--account", SUPERNET_DEPLOYER, "--yes", *extra],
            {**os.environ, **env}, timeout=300,
        )

    return deploy


# ---- the marketplace core ----


@pytest.fixture(scope="session")
def coordinator(deployment):
    return deployment.contract("NodeCoordinator")


@pytest.fixture(scope="session")
def judge(deployment):
    return deployment.contract("ProofOfInference")


@pytest.fixture(scope="session")
def zk_verifier(deployment):
    return deployment.contract("ProofOfInference")  # ProofOfInference is the ZKVerifier registry


@pytest.fixture(scope="session")
def proof_of_use(deployment):
    return deployment.contract("ProofOfUse")


@pytest.fixture(scope="session")
def marketplace(deployment):
    return deployment.contract("ModelMarketplace")


@pytest.fixture(scope="session")
def model_owner(accounts):
    return accounts[4]


@pytest.fixture(scope="session")
def requester(accounts):
    return accounts[5]


@pytest.fixture(scope="session")
def operators(accounts):
    """Four node operators (each a genesis holder with 50M JOY)."""
    return [accounts[index] for index in range(6, 10)]


@pytest.fixture
def register_model(marketplace, model_owner):
    """Registers a model (its commitment, then the registration); returns its 32-byte id."""

    def register(
        name="digits", price=5 * JOY, quorum=1, circuit_id=b"\0" * 32, stream=b"\0" * 32, owner=None,
        response_window=0, tolerant=False,
    ):
        owner = owner or model_owner
        model_id = model_key(name)
        salt = model_key(f"salt:{name}")
        marketplace.commitModelRegistration(registration_commitment(model_id, owner.address, salt), sender=owner)
        marketplace.registerModel(
            model_id,
            f"ipfs://bafy{name}metadata",
            model_key(f"weights:{name}"),
            price,
            (quorum, circuit_id, response_window, tolerant),
            stream,
            salt,
            sender=owner,
        )
        return model_id

    return register


@pytest.fixture
def register_node(coordinator, token):
    """Approves and registers ``operator`` as a node serving ``models``."""

    def register(operator, models, stake=2_000 * JOY, capacity=4):
        token.approve(coordinator, stake, sender=operator)
        coordinator.registerNode(stake, capacity, list(models), sender=operator)
        return operator

    return register


@pytest.fixture
def served_model(register_model, register_node, operators):
    """Registers a model (``register_model``'s arguments) and every operator as a node serving
    it; returns the model id."""

    def register(name, **model):
        model_id = register_model(name, **model)
        for operator in operators:
            register_node(operator, [model_id])
        return model_id

    return register


@pytest.fixture
def assign_nodes(marketplace, outsider):
    """Assigns an unassigned request's nodes (by anyone: ``outsider`` by default, from the next
    block); returns the request as assigned."""

    def assign(request, sender=None):
        receipt = marketplace.assignNodes(request, sender=sender or outsider)
        (event,) = receipt.decode_logs(marketplace.NodesAssigned)
        return request.assigned(event)

    return assign


@pytest.fixture
def request_inference(marketplace, token, requester, chain, assign_nodes):
    """Approves and requests, then (unless ``assign=False``) assigns the nodes in the next
    block; returns (the Request the nodes pass back, assigned node addresses, the request's
    receipt)."""

    def request(model_id, max_price=None, deadline_in=600, sender=None, input_commitment=None, assign=True):
        sender = sender or requester
        max_price = marketplace.getModel(model_id).price if max_price is None else max_price
        token.approve(marketplace, max_price, sender=sender)
        receipt = marketplace.requestInference(
            model_id,
            input_commitment or model_key(f"input:{chain.blocks.height}"),
            "ipfs://bafyinput",
            max_price,
            chain.pending_timestamp + deadline_in,
            sender=sender,
        )
        (event,) = receipt.decode_logs(marketplace.InferenceRequested)
        request = Request.from_event(event)
        if assign:
            request = assign_nodes(request)
        return request, request.nodes, receipt

    return request


@pytest.fixture
def commit_reveal(marketplace, accounts):
    """Carries quorum results through commit and reveal: ``outputs`` maps each assigned node's
    address to its output commitment (a node left out stays silent); every listed node commits,
    then reveals. Returns the receipts of the reveals."""

    def run(request, outputs, uri="ipfs://bafyoutput", reveal=True):
        salts = {node: model_key(f"salt:{request.id}:{node}") for node in outputs}
        for node, output in outputs.items():
            marketplace.commitResult(request, seal_result(request.id, node, output, salts[node]),
                                     sender=accounts[node])
        if not reveal:
            return salts
        return [
            marketplace.revealResult(request, output, salts[node], uri, b"", sender=accounts[node])
            for node, output in outputs.items()
        ]

    return run


# ---- zero knowledge ----


@pytest.fixture(scope="session")
def prover():
    """One warm joynet.ZKProver (its default backend: native when groth16py is installed) for the
    whole session."""
    from joynet import ZKProver

    with ZKProver() as instance:
        yield instance


@pytest.fixture(scope="session")
def model():
    """The committed quantized digits MLP."""
    from joynet.zk import QuantizedMLP

    return QuantizedMLP.load()


def pytest_collection_modifyitems(session, config, items):
    """Refuses a fixture name defined with different scopes in different test files: Ape's
    isolation keys snapshots by fixture name, so a function-scoped ``digits`` in one module and a
    module-scoped ``digits`` in another made the function's chain state outlive its test (it
    leaked into every later test of test_marketplace.py)."""
    scopes: dict[str, set[str]] = {}
    for item in items:
        for name in getattr(item, "fixturenames", ()):
            for definition in item._fixtureinfo.name2fixturedefs.get(name, ()):
                if getattr(definition.func, "__name__", "") == "get_direct_param_fixture_func":
                    continue  # a @pytest.mark.parametrize argument, not a fixture
                scopes.setdefault(name, set()).add(definition.scope)
    clashes = {name: found for name, found in scopes.items() if len(found) > 1}
    if clashes:
        raise pytest.UsageError(f"fixture names defined with several scopes (rename one): {clashes}")

