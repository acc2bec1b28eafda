"""``joynet.InferenceNode``: the base class for model execution on an edge node.

    node = InferenceNode(web3_provider="http://127.0.0.1:8545", contract_address=None,
                         iota_node_url=None, iota_wallet_seed=None, store=None)
    result = await node.execute_inference(model_id="mymodel", input_data={"text": "Hello world"}, use_iota=False)
    result.output, result.output_commitment          # what submitResult carries

``model_id`` is a model registered on chain (its ``metadataURI`` is read from the marketplace),
or directly a metadata CID (``ipfs://CID`` or ``CID``). The package is fetched from the
``ModelStore`` (every block re-hashed against its CID), its runtime is chosen by the metadata's
``framework`` (``joynet.inference.runtimes``), the input is checked against the package's
``inputSchema`` and the node's payload limit, and the runtime gives a deterministic output and
its output commitment. Every failure is an ``InferenceError`` with a message a requester can read.
"""

import asyncio
import contextlib
import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from joynet.feeless.checks import check_registered_circuit, circuit_verification_key
from joynet.feeless.claims import Bindings
from joynet.feeless.errors import ProofRejectedError
from joynet.feeless.requester import request_over_channel
from joynet.feeless.serving import serve_channel
from joynet.inference.errors import InferenceError, InvalidInputError, ModelLoadError, ModelNotRegisteredError
from joynet.inference.runtimes import RuntimeContext, RuntimeOutput, runtime_for
from joynet.inference.schema import DEFAULT_MAX_INPUT_BYTES, compile_schema, decode_payload, validate_input
from joynet.models.package import (
    IPFS_SCHEME,
    ModelPackage,
    ModelPackageError,
    PackageTooLargeError,
    load_model_metadata,
    load_model_package,
)
from joynet.paths import joynet_home
from joynet.storage import ModelStore, StoreError, open_store
from joynet.storage.cids import cid_text, parse_cid
from joynet.storage.errors import InvalidCIDError

if TYPE_CHECKING:  # imported at run time only where a proof is first checked (_verify_pairing)
    from joynet.zk import ZKProver

logger = logging.getLogger("joynet.inference")

MODEL_CACHE_ENV = "JOYNET_MODEL_CACHE"
MAX_MODEL_BYTES_ENV = "JOYNET_MAX_MODEL_BYTES"
# The largest model package (all its files) a node fetches unless told otherwise: a model owner
# (or a metadata update) must not be able to fill a serving node's disk.
DEFAULT_MAX_MODEL_BYTES = 8 << 30
_VERIFIER_LANE = "verifier"  # the lane that checks channel answers' proofs
ZERO_BYTES32 = b"\x00" * 32
FETCH_LOG_SECONDS = 5.0
FILES_DIR = "files"  # under the cache directory: models' files, each named by its CID


def default_cache_dir() -> Path:
    return Path(os.environ.get(MODEL_CACHE_ENV) or joynet_home() / "models")


@contextlib.contextmanager
def _load_errors(cid: str):
    """Reading model ``cid`` from the store: its failures as ModelLoadErrors that say which."""
    try:
        yield
    except StoreError as error:
        raise ModelLoadError(f"model {cid} cannot be loaded from the store: {error}") from None
    except PackageTooLargeError as error:
        raise ModelLoadError(str(error)) from None
    except ModelPackageError as error:
        raise ModelLoadError(f"model {cid} has bad metadata: {error}") from None


def _fetch_logger(cid: str):
    """Logs a model file's fetch as it goes: when it starts, every ``FETCH_LOG_SECONDS``, when done."""
    last_logged: dict[str, float] = {}

    def log(name: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done in (0, total) or now - last_logged.get(name, now) >= FETCH_LOG_SECONDS:
            if done != total or name in last_logged:  # a file found in the cache is not news
                logger.info("model %s: fetching %s, %.1f of %.1f MB", cid, name, done / 1e6, total / 1e6)
            last_logged[name] = now

    return log


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass
class LoadedModel:
    cid: str  # of the metadata document
    package: ModelPackage
    runtime: Any  # a ModelRuntime
    validator: Any  # the compiled inputSchema

    @property
    def name(self) -> str:
        return self.package.name

    @property
    def verification(self) -> dict:
        return self.package.verification


@dataclass(frozen=True)
class InferenceOutput:
    """A result as a node submits it."""

    model_id: str
    model_cid: str
    output: dict  # matches the model's outputSchema
    output_commitment: bytes  # bytes32
    input_commitment: bytes | None  # bytes32 (ZK models), else None
    proof: Any  # a joynet.zk.ZKProof when one was made
    proof_calldata: bytes  # b"" without a proof
    verification: dict  # the model's {quorum, circuitId}
    seconds: float  # validation + run
    proof_verified: bool = False  # a feeless answer's proof checked by this requester
    extra: dict = field(default_factory=dict)  # the runtime's own (e.g. a language model's activationProof)

    @property
    def output_commitment_hex(self) -> str:
        return "0x" + self.output_commitment.hex()


class InferenceNode:
    def __init__(
        self,
        web3_provider: str | None = None,
        contract_address: str | None = None,
        iota_node_url: str | None = None,
        iota_wallet_seed: str | None = None,
        store: ModelStore | None = None,
        *,
        marketplace: Any = None,
        cache_dir: str | Path | None = None,
        device: str | None = None,
        max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES,
        prover_factory: Any = None,
        max_model_bytes: int | None = None,
    ):
        """``web3_provider`` / ``contract_address``: where the marketplace is (used, lazily, only
        to resolve model ids registered on chain; defaults: the connected provider and the
        deployment file); ``marketplace``: an existing ``joynet.ModelMarketplace`` instead;
        ``store``: the ModelStore (default ``open_store()``); ``cache_dir``: where models' files
        are kept once fetched (``files/<CID>``) and runtimes keep what they derive from them
        (one directory per metadata CID);
        ``device``: "cpu" or "cuda" (default: cuda when available); ``max_input_bytes``: the
        largest input payload accepted; ``prover_factory``: () -> ZKProver for ZK models;
        ``max_model_bytes``: the largest model package fetched (default ``$JOYNET_MAX_MODEL_BYTES``,
        else 8 GiB)."""
        if max_input_bytes <= 0:
            raise ValueError("max_input_bytes must be positive")
        self.web3_provider = web3_provider
        self.contract_address = contract_address
        self.iota_node_url = iota_node_url
        self.iota_wallet_seed = iota_wallet_seed
        self.store = store if store is not None else open_store()
        self._marketplace = marketplace
        self._owns_marketplace = False
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self._device = device
        self.max_input_bytes = max_input_bytes
        self.prover_factory = prover_factory
        self.max_model_bytes = max_model_bytes or int(os.environ.get(MAX_MODEL_BYTES_ENV) or DEFAULT_MAX_MODEL_BYTES)
        self._models: dict[str, LoadedModel] = {}
        self._iota_handler = None
        self._subscribed: set[str] = set()
        self._verifier: ZKProver | None = None  # to check channel answers' proofs
        self._locks: dict[str, asyncio.Lock] = {}
        # Each model runs on its own long-lived worker thread (its lane): the event loop stays
        # free, torch's intra-op thread pool (OpenMP) is created once per lane instead of per
        # call, and a slow proof of one model does not queue another model's inferences.
        self._lanes: dict[str, ThreadPoolExecutor] = {}

    @property
    def device(self) -> str:
        if self._device is None:
            self._device = default_device()
        return self._device

    @property
    def marketplace(self):
        if self._marketplace is None:
            from joynet.chain.marketplace import ModelMarketplace

            self._marketplace = ModelMarketplace(
                web3_provider=self.web3_provider, contract_address=self.contract_address
            )
            self._owns_marketplace = True
        return self._marketplace

    # ---- loading ----

    async def resolve(self, model_id: str) -> tuple[str, bytes | None]:
        """(metadata CID, the weights commitment the chain holds or None) for a model id or CID."""
        cid = as_cid(model_id)
        if cid is not None:
            return cid, None
        from joynet.chain.marketplace import MarketplaceError

        try:
            model = self.marketplace.get_model(model_id)
        except MarketplaceError as error:
            raise ModelNotRegisteredError(f"{error} (and {model_id!r} is not a CID)") from None
        uri = model.metadataURI
        cid = as_cid(uri) if uri.startswith(IPFS_SCHEME) else None
        if cid is None:
            raise ModelLoadError(f"model {model_id!r}: its metadataURI {uri!r} is not an ipfs:// CID")
        commitment = bytes(model.weightsCommitment)
        return cid, (commitment if commitment != ZERO_BYTES32 else None)

    async def runtime_of(self, model_id: str) -> type:
        """The runtime class that would run ``model_id``, from its metadata alone (no file is
        fetched): UnknownRuntimeError when this node has none for its framework, ModelLoadError
        when its metadata cannot be read. A node checks it before it stakes on a model."""
        cid, _ = await self.resolve(model_id)
        with _load_errors(cid):
            metadata = await load_model_metadata(self.store, cid)
        return runtime_for(metadata["framework"])

    async def load_model(self, model_id: str, expected_weights_commitment: bytes | None = None) -> LoadedModel:
        """The model (loaded once per metadata CID, then kept). Raises ModelLoadError."""
        cid = as_cid(model_id)
        if cid is None:
            cid, chain_commitment = await self.resolve(model_id)
            expected_weights_commitment = expected_weights_commitment or chain_commitment
        lock = self._locks.setdefault(cid, asyncio.Lock())
        async with lock:
            if cid not in self._models:
                self._models[cid] = await self._load(cid)
        loaded = self._models[cid]
        declared = loaded.package.weights_commitment.lower()
        if expected_weights_commitment is not None and declared != "0x" + expected_weights_commitment.hex():
            raise ModelLoadError(
                f"model {model_id!r}: the chain's weightsCommitment 0x{expected_weights_commitment.hex()} differs "
                f"from its metadata's {declared}"
            )
        return loaded

    async def _load(self, cid: str) -> LoadedModel:
        started = time.perf_counter()
        with _load_errors(cid):
            package = await load_model_package(
                self.store, cid, self.cache_dir / FILES_DIR, progress=_fetch_logger(cid), max_bytes=self.max_model_bytes
            )
        runtime_class = runtime_for(package.framework)
        validator = compile_schema(package.input_schema, cid)
        context = RuntimeContext(cache_dir=self.cache_dir / cid, device=self.device, prover_factory=self.prover_factory)
        try:
            runtime = await self._in_lane(cid, runtime_class, package, context)
        except InferenceError:
            raise
        except Exception as error:  # noqa: BLE001 - a plugin's failure is a load failure
            raise ModelLoadError(f"model {cid} ({package.framework}) failed to load: {error}") from error
        logger.info(
            "loaded model %s (%s, %s) from the store in %.2f s",
            package.name,
            package.framework,
            cid,
            time.perf_counter() - started,
        )
        return LoadedModel(cid=cid, package=package, runtime=runtime, validator=validator)

    # ---- running ----

    def run(
        self,
        loaded: LoadedModel,
        input_data,
        *,
        request_id: int | None = None,
        node: Any = None,
        model_id: str | None = None,
    ) -> InferenceOutput:
        """Validates and runs one input on a loaded model (synchronous; for worker threads)."""
        started = time.perf_counter()
        value = decode_payload(input_data, self.max_input_bytes)
        validate_input(loaded.validator, value, loaded.cid)
        result: RuntimeOutput = loaded.runtime.run(value, request_id=request_id, node=node)
        return InferenceOutput(
            model_id=model_id or loaded.cid,
            model_cid=loaded.cid,
            output=result.output,
            output_commitment=result.output_commitment,
            input_commitment=result.input_commitment,
            proof=result.proof,
            proof_calldata=result.proof_calldata,
            verification=dict(loaded.verification),
            seconds=time.perf_counter() - started,
            extra=dict(result.extra),
        )

    async def execute_inference(
        self,
        model_id: str,
        input_data,
        use_iota: bool = False,
        *,
        request_id: int | None = None,
        node: Any = None,
        channel_id: str | None = None,
        credential: str | bytes | None = None,
        timeout: float = 120.0,
    ) -> InferenceOutput:
        """Runs ``input_data`` (a dict, or a raw JSON document as bytes/str) on ``model_id`` (a
        registered model id or a metadata CID). With ``request_id`` and ``node`` (an address), a ZK
        model also proves the result. Raises InvalidInputError (PayloadTooLargeError),
        ModelLoadError (ModelNotRegisteredError, UnknownRuntimeError).

        ``use_iota=True``: this node is the requester of a feeless inference. The request goes over
        the model's channel (``channel_id``, default the model's iotaStreamId on chain) to the edge
        node serving it, with ``credential`` (a model-access JWT) for a private model; a ZK model's
        answer is accepted only with a Groth16 proof of this result that snarkjs verifies here
        (ProofRejectedError otherwise; AccessDeniedError when the node refused the credential)."""
        if use_iota:
            return await self._request_over_channel(model_id, input_data, channel_id, credential, timeout)
        loaded = await self.load_model(model_id)
        return await self.execute_loaded(loaded, input_data, request_id=request_id, node=node, model_id=model_id)

    async def execute_loaded(self, loaded: LoadedModel, input_data, **options) -> InferenceOutput:
        """``execute_inference`` on a model already loaded (``load_model``): ``run`` (its
        ``request_id=``, ``node=``, ``model_id=``) in the model's worker thread, without reading
        the registry again."""
        return await self._in_lane(loaded.cid, self.run, loaded, input_data, **options)

    # ---- checking another node's answer (tolerant policy) ----

    def check_answer(self, loaded: LoadedModel, input_data, document: Any, output_commitment: bytes):
        """A validator's check of another node's answer to ``input_data`` (a raw input
        document), published as the output document ``document`` and committed on chain as
        ``output_commitment``: a :class:`joynet.inference.toploc.Verdict` (synchronous; for
        worker threads). An input the model does not take has no right answer: rejected.
        Raises ModelLoadError for a model whose runtime cannot re-check an answer."""
        from joynet.inference import toploc

        runtime = loaded.runtime
        if not hasattr(runtime, "prefill"):
            raise ModelLoadError(
                f"model {loaded.cid} ({loaded.package.framework}): its runtime cannot check another node's answer"
            )
        try:
            value = decode_payload(input_data, self.max_input_bytes)
            validate_input(loaded.validator, value, loaded.cid)
        except InvalidInputError as error:
            return toploc.Verdict(False, [f"the model does not take this input, so no answer is right: {error}"])
        if not isinstance(document, dict) or not isinstance(output := document.get("output"), dict):
            return toploc.Verdict(False, ["the output document has no output object"])
        try:
            committed = runtime.commitment_of(output)
        except ValueError as error:
            return toploc.Verdict(False, [f"the output document: {error}"])
        if committed != output_commitment:
            return toploc.Verdict(
                False, [f"the output document commits to 0x{committed.hex()}, not 0x{output_commitment.hex()}"]
            )
        proof = document.get("activationProof")
        try:
            proof_bytes = bytes.fromhex(str(proof).removeprefix("0x")) if isinstance(proof, str) else b""
        except ValueError:
            proof_bytes = b""
        if not proof_bytes:
            return toploc.Verdict(False, ["the output document carries no activation proof (0x and hex digits)"])
        try:
            return toploc.validate(runtime, value, output, proof_bytes)
        except InvalidInputError as error:
            return toploc.Verdict(False, [f"the model does not take this input, so no answer is right: {error}"])

    async def check_answer_loaded(self, loaded: LoadedModel, input_data, document: Any, output_commitment: bytes):
        """``check_answer`` in the model's worker thread."""
        return await self._in_lane(loaded.cid, self.check_answer, loaded, input_data, document, output_commitment)

    # ---- feeless (channel) mode ----

    def iota_handler(self, admission=None):
        """This node's ``joynet.IOTAInferenceHandler`` (on ``iota_node_url``, else the embedded
        ledger), keyed by ``iota_wallet_seed``; ``admission`` is used when it is first created."""
        if self._iota_handler is None:
            from joynet.feeless.handler import IOTAInferenceHandler, admit_everyone

            self._iota_handler = IOTAInferenceHandler(
                node_url=self.iota_node_url, wallet_seed=self.iota_wallet_seed, admission=admission or admit_everyone
            )
        return self._iota_handler

    async def open_model_channel(self, model_name: str, private: bool = True, access=None) -> str:
        """Announces (or reopens) this node's channel for ``model_name``; with ``access`` (a
        ``joynet.identity.credentials.ModelAccessPolicy``) only credential holders are admitted to it."""
        admission = access.admits if access is not None else None
        return await self.iota_handler(admission).create_model_channel(model_name, private=private, open=False)

    async def subscribe_once(self, channel_id: str, credential: bytes = b"") -> None:
        if channel_id not in self._subscribed:
            handler = self.iota_handler()
            # A model owner asking on its own channel is its author: it posts without subscribing.
            if not handler.is_author(channel_id):
                await handler.subscribe(channel_id, credential)
            self._subscribed.add(channel_id)

    async def serve_iota(
        self,
        channel_id: str,
        model_id: str,
        *,
        node_address: str,
        access=None,
        max_requests: int | None = None,
        timeout: float | None = None,
        **options,
    ) -> int:
        """Answers feeless requests on ``channel_id`` with ``model_id`` (proofs bound to
        ``node_address``, the EVM address ProofOfUse credits); returns how many were answered.
        ``options``: ``joynet.feeless.serving.serve_channel``'s (``book=`` on a channel the network
        serves, ``failover_seconds=``, ``stop=``, ``on_answer=``)."""
        return await serve_channel(
            self.iota_handler(),
            self.execute_inference,
            channel_id,
            model_id,
            node_address=node_address,
            access=access,
            max_requests=max_requests,
            timeout=timeout,
            **options,
        )

    async def _request_over_channel(
        self, model_id: str, input_data, channel_id: str | None, credential: str | bytes | None, timeout: float
    ) -> InferenceOutput:
        channel_id = channel_id or self._model_channel(model_id)
        package = await self._model_metadata(model_id)
        if as_cid(model_id) is None:  # registered: its proofs are of the circuit the chain names
            check_registered_circuit(
                package, self.marketplace.get_model(model_id).circuitId, self.marketplace.circuit_registered
            )
        verification_key = await circuit_verification_key(package, self.store)
        credential = credential.encode() if isinstance(credential, str) else (credential or b"")
        await self.subscribe_once(channel_id, credential)
        # A model registered on chain: only a node whose channel key is bound to it may answer.
        # A model named by its CID has no registry entry, hence no binding to check.
        bindings = Bindings.registered(self.marketplace, model_id) if as_cid(model_id) is None else None
        answer = await request_over_channel(
            self.iota_handler(),
            package,
            channel_id,
            model_id,
            input_data,
            timeout=timeout,
            verify_pairing=lambda public_signals, proof: self._verify_pairing(public_signals, proof, verification_key),
            bindings=bindings,
        )
        calldata = b""
        if answer.proof is not None:
            from joynet.zk import encode_calldata

            calldata = encode_calldata(answer.proof["proof"])
        return InferenceOutput(
            model_id=model_id,
            model_cid=package.cid,
            output=answer.output,
            output_commitment=answer.output_commitment,
            input_commitment=None,
            proof=answer.proof,
            proof_calldata=calldata,
            verification=dict(package.verification),
            seconds=0.0,
            proof_verified=answer.proof_verified,
        )

    def _model_channel(self, model_id: str) -> str:
        """The channel a registered feeless model names on chain (its iotaStreamId)."""
        stream = bytes(self.marketplace.get_model(model_id).iotaStreamId)
        if stream == b"\0" * 32:
            raise InferenceError(f"model {model_id!r} has no IOTA stream: pass channel_id= or use use_iota=False")
        return "0x" + stream.hex()

    async def _model_metadata(self, model_id: str) -> ModelPackage:
        """The model's metadata document (no weights fetched), checked against the chain's commitment."""
        cid, chain_commitment = await self.resolve(model_id)
        metadata = json.loads(await self.store.cat(cid))
        package = ModelPackage(cid=cid, metadata=metadata, files={})
        if chain_commitment is not None and package.weights_commitment.lower() != "0x" + chain_commitment.hex():
            raise ProofRejectedError(f"model {model_id!r}: its metadata's weightsCommitment differs from the chain's")
        return package

    async def _verify_pairing(self, public_signals: list, proof: dict, verification_key: dict | None = None) -> bool:
        """snarkjs's Groth16 check of a channel answer's proof (with the model package's key, or the
        built-in digits circuit's when None), on this node's worker thread."""
        if self._verifier is None:
            factory = self.prover_factory
            if factory is None:
                from joynet.zk import groth16_verifier as factory
            self._verifier = await self._in_lane(_VERIFIER_LANE, factory)
        return await self._in_lane(_VERIFIER_LANE, self._verifier.verify, public_signals, proof, verification_key)

    async def _in_lane(self, lane: str, function, *args, **kwargs):
        """Runs ``function`` on the lane's worker thread (one per model, by metadata CID)."""
        executor = self._lanes.get(lane)
        if executor is None:
            executor = self._lanes[lane] = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"joynet-{lane[:12]}")
        return await asyncio.get_running_loop().run_in_executor(executor, lambda: function(*args, **kwargs))

    # ---- lifecycle ----

    def loaded_models(self) -> list[LoadedModel]:
        return list(self._models.values())

    async def close(self) -> None:
        if self._iota_handler is not None:
            self._iota_handler.close()
            self._iota_handler = None
            self._subscribed.clear()
        for loaded in self._models.values():
            loaded.runtime.close()
        self._models.clear()
        if self._verifier is not None:
            self._verifier.close()
            self._verifier = None
        for executor in self._lanes.values():
            executor.shutdown(wait=True)
        self._lanes.clear()  # reusable: lanes are created again on use
        if self._owns_marketplace and self._marketplace is not None:
            self._marketplace.close()
            self._marketplace = None

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc_info):
        await self.close()


def as_cid(model_id: str) -> str | None:
    """The CID text of ``ipfs://CID`` or ``CID``; None when ``model_id`` is not one."""
    if not isinstance(model_id, str):
        return None
    text = model_id.removeprefix(IPFS_SCHEME)
    try:
        return cid_text(parse_cid(text))
    except InvalidCIDError:
        if model_id.startswith(IPFS_SCHEME):
            raise ModelLoadError(f"{model_id!r} is not a valid CID") from None
        return None
