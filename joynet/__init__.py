"""JoyNet: a decentralized marketplace for AI model inference.

The Python side of the protocol: clients of the contracts and the runtime of the agents.
Names follow the original design (``ModelGovernanceDAO``, ``ModelMarketplace``, ``EdgeNode``...).
Importing this package does not import Ape; each client does when it is used.
"""

from joynet.deploy import JOY
from joynet.deployment import Deployment, DeploymentError, load_deployment
from joynet.governance import GovernanceError, ModelGovernanceDAO, ProposalState, VoteType
from joynet.inference import (
    InferenceError, InferenceNode, InferenceOutput, InvalidInputError, ModelLoadError, PayloadTooLargeError,
)
from joynet.iota_handler import IOTAInferenceHandler, IOTAInferenceRequest, IOTAInferenceResponse
from joynet.marketplace import InferenceResult, MarketplaceError, ModelMarketplace, RequestStatus, model_key
from joynet.model_package import ModelPackage, ModelPackageError, load_model_package, publish_model
from joynet.storage import ModelStore, StoreError, open_store
from joynet.zk import QuantizedMLP, ZKProof, ZKProofError, ZKProver

__all__ = [
    "JOY",
    "Deployment",
    "DeploymentError",
    "GovernanceError",
    "IOTAInferenceHandler",
    "InferenceError",
    "InferenceNode",
    "InferenceOutput",
    "InvalidInputError",
    "ModelLoadError",
    "PayloadTooLargeError",
    "IOTAInferenceRequest",
    "IOTAInferenceResponse",
    "InferenceResult",
    "MarketplaceError",
    "ModelMarketplace",
    "ModelPackage",
    "ModelPackageError",
    "ModelStore",
    "RequestStatus",
    "ModelGovernanceDAO",
    "ProposalState",
    "StoreError",
    "VoteType",
    "QuantizedMLP",
    "ZKProof",
    "ZKProofError",
    "ZKProver",
    "load_deployment",
    "load_model_package",
    "model_key",
    "open_store",
    "publish_model",
]

from joynet.edge import EdgeNode, publish_input  # noqa: E402  (the edge agent)

__all__ += ["EdgeNode", "publish_input"]
