"""What runs on an edge node: ``InferenceNode`` (loads a model package by CID, checks the input,
runs the model and gives the output and its commitment; also the design's feeless calls),
``EdgeNode`` (the operator's agent: which requests to serve, results, declines, fees), its SQLite
job journal. ``agents/edge_node.py`` holds the agent's handlers."""

from joynet.edge.edge_node import EdgeNode, format_status, node_status
from joynet.edge.errors import EdgeNodeError, JournalError
from joynet.edge.inference_node import InferenceNode, InferenceOutput, LoadedModel
from joynet.edge.journal import Job, JobJournal

__all__ = [
    "EdgeNode",
    "EdgeNodeError",
    "InferenceNode",
    "InferenceOutput",
    "Job",
    "JobJournal",
    "JournalError",
    "LoadedModel",
    "format_status",
    "node_status",
]
