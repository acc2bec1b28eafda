"""Circom circuits generated from quantized models (see joynet.zk.circuitgen.generator) and the
input of one inference for them (joynet.zk.circuitgen.signals)."""

from joynet.zk.circuitgen.generator import WEIGHT_MODES, GeneratedCircuit, GenerationError, generate
from joynet.zk.circuitgen.signals import circuit_signals

__all__ = ["WEIGHT_MODES", "GeneratedCircuit", "GenerationError", "circuit_signals", "generate"]
