"""Edge nodes: ``joynet.EdgeNode`` (the operator's agent), its SQLite job journal, the
Silverback-shaped ``EdgeApp`` that ``ape run edge_agent`` runs, and the request input documents
(``publish_input`` for requesters, ``fetch_input`` for nodes)."""

from joynet.edge.app import EdgeApp
from joynet.edge.inputs import (
    InputFetchError, digits_input, document_commitment, encode_document, fetch_input, publish_input,
)
from joynet.edge.journal import Job, JobJournal, JournalError
from joynet.edge.node import EdgeNode, EdgeNodeError, node_status

__all__ = [
    "EdgeApp",
    "EdgeNode",
    "EdgeNodeError",
    "InputFetchError",
    "Job",
    "JobJournal",
    "JournalError",
    "digits_input",
    "document_commitment",
    "encode_document",
    "fetch_input",
    "node_status",
    "publish_input",
]
