"""The errors of ``joynet.zk``."""

from joynet.errors import JoyNetError


class ModelError(JoyNetError, ValueError):
    """A quantized model or an input that the circuit cannot take."""


class ZKProofError(JoyNetError, RuntimeError):
    """The prover could not produce a proof that verifies, or its worker failed."""


class CeremonyError(JoyNetError, ValueError):
    """A trusted-setup ceremony step that cannot be made, or a ceremony that does not verify."""
