"""Circom circuits generated from quantized models (see joynet.zk.circuitgen.generator)."""

from joynet.zk.circuitgen.generator import WEIGHT_MODES, GeneratedCircuit, GenerationError, generate

__all__ = ["WEIGHT_MODES", "GeneratedCircuit", "GenerationError", "generate"]
