"""JoyNet: a decentralized marketplace for AI model inference.

The Python side of the protocol: clients of the contracts and the runtime of the agents.
Names follow the original design (``ModelGovernanceDAO``, ``ModelMarketplace``, ``EdgeNode``...).
Importing this package does not import Ape; each client does when it is used.
"""

from joynet.chain.dao import GovernanceError, ModelGovernanceDAO, ProposalState, VoteType
from joynet.chain.deploy import JOY
from joynet.chain.deployment_file import Deployment, DeploymentError, load_deployment
from joynet.chain.errors import ProposalStateError, TimelockNotReadyError, TransactionRefusedError
from joynet.chain.marketplace import InferenceResult, MarketplaceError, ModelMarketplace, RequestStatus, model_key
from joynet.edge import EdgeNode, InferenceNode, InferenceOutput
from joynet.errors import JoyNetError
from joynet.feeless.handler import IOTAInferenceHandler, IOTAInferenceRequest, IOTAInferenceResponse
from joynet.inference import (
    InferenceError,
    InvalidInputError,
    ModelLoadError,
    OutputMismatchError,
    PayloadTooLargeError,
)
from joynet.inference.inputs import publish_input
from joynet.inference.outputs import fetch_output
from joynet.models.package import (
    ModelPackage,
    ModelPackageError,
    load_model_metadata,
    load_model_package,
    publish_model,
)
from joynet.storage import ModelStore, StoreError, open_store
from joynet.zk import QuantizedMLP, ZKProof, ZKProofError, ZKProver

__all__ = [
    "JOY",
    "EdgeNode",
    "JoyNetError",
    "publish_input",
    "fetch_output",
    "Deployment",
    "DeploymentError",
    "GovernanceError",
    "IOTAInferenceHandler",
    "InferenceError",
    "InferenceNode",
    "InferenceOutput",
    "InvalidInputError",
    "ModelLoadError",
    "OutputMismatchError",
    "PayloadTooLargeError",
    "IOTAInferenceRequest",
    "IOTAInferenceResponse",
    "InferenceResult",
    "MarketplaceError",
    "TransactionRefusedError",
    "ModelMarketplace",
    "ModelPackage",
    "ModelPackageError",
    "ModelStore",
    "RequestStatus",
    "ModelGovernanceDAO",
    "ProposalState",
    "ProposalStateError",
    "TimelockNotReadyError",
    "StoreError",
    "VoteType",
    "QuantizedMLP",
    "ZKProof",
    "ZKProofError",
    "ZKProver",
    "load_deployment",
    "load_model_metadata",
    "load_model_package",
    "model_key",
    "open_store",
    "publish_model",
]
