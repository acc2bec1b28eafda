"""Who answers a request on a channel the network serves: assignment by load, failover by rank.

A model owner's *open* channel (``joynet.channels`` announcement flag) is served by every staked
node the chain binds to the model: a node serves from its first ``node-key`` claim on the stream
that the chain's binding confirms (``joynet.feeless.claims.Bindings``). Every party (each node,
each bridger, a requester that wants to know) computes the same order for every request from the
channel's messages alone, so nobody has to announce it and nobody can bend it:

* **Load** of a node when a request arrives: the requests assigned to it that nobody has answered
  yet, plus those of the last ``MISS_WINDOW`` requests assigned to it that another node answered
  (it missed them: a stopped node stops being chosen until it has shown it serves again).
* **Order**: serving nodes by load, ties broken by ``sha256(previous hash || node address)``,
  where the previous hash is the message the request follows on the channel. The requester fixes
  its payload, not the head it lands on, so grinding the payload moves nothing; a node cannot
  foresee which head a request will follow.
* **Failover**: the first node of the order is the assigned one; the node at rank ``k`` answers a
  request still unanswered ``k x failover`` seconds after it saw it (``failover``: the model's
  declared time, ``ModelPackage.failover_seconds``).
* **Credit** (what the bridgers count): the assigned node's answer when it gave one, else the first
  answer of another serving node. A node answering out of turn gains nothing while the assigned
  node serves.

An answer is a response packet whose signing key the chain binds to the node it names and which
vouched for that node on the stream; a key never answers its own request.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from eth_utils import is_address, to_checksum_address

from joynet.channels import Message, MessageType
from joynet.feeless.claims import Bindings, ChannelClaim

# How many recent requests a node's misses count against its load.
MISS_WINDOW = 16


@dataclass(frozen=True)
class Answer:
    sequence: int
    node: str
    served: bool  # False: the node declined (invalid input, access denied, failed inference)
    message_id: str = ""
    body: dict = field(default_factory=dict, compare=False)  # the response's public JSON


# (assignment, answer) -> whether the answer checks out (a bridger's proof and commitment check)
AnswerCheck = Callable[["Assignment", Answer], bool]


@dataclass
class Assignment:
    """One request: its order of nodes when it arrived, and the answers it received."""

    request_id: str
    sequence: int
    requester: bytes  # the request's signing key
    order: tuple[str, ...]  # node addresses, assigned first
    answers: list[Answer] = field(default_factory=list)
    body: dict = field(default_factory=dict)  # the request's public JSON
    requester_count: int = 1  # this is the requester key's n-th request on the channel

    @property
    def assignee(self) -> str | None:
        return self.order[0] if self.order else None

    @property
    def answered(self) -> bool:
        return bool(self.answers)

    def rank_of(self, node: str) -> int | None:
        node = to_checksum_address(node)
        return self.order.index(node) if node in self.order else None

    def credited(self, up_to: int | None = None, check: AnswerCheck | None = None) -> Answer | None:
        """The answer the request is credited for, among those up to sequence ``up_to``: the
        assigned node's when it answered, else the first; None when nobody answered, or when
        that answer declined. With ``check``, an answer that does not check out is passed over
        for the next one (the assigned node's first, then in channel order)."""
        answers = [answer for answer in self.answers if up_to is None or answer.sequence <= up_to]
        ranked = sorted(answers, key=lambda answer: answer.node != self.assignee)  # stable: channel order
        for answer in ranked:
            if not answer.served:
                return None  # a decline stands: the input or the requester is refused by every node
            if check is None or check(self, answer):
                return answer
        return None


def accounting_of(message: Message) -> dict | None:
    """The public JSON of a packet (a request's or response's accounting part), else None."""
    if message.type is not MessageType.PACKET or not message.public:
        return None
    try:
        body = json.loads(message.public)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def tiebreak(previous: bytes, node: str) -> bytes:
    return hashlib.sha256(previous + bytes.fromhex(node.removeprefix("0x"))).digest()


class AssignmentBook:
    """Follows one model channel's messages (``observe`` each verified message, in order) and
    keeps every request's assignment. ``bindings`` says which key may answer for which node."""

    def __init__(self, bindings: Bindings):
        self.bindings = bindings
        self.requests: dict[str, Assignment] = {}
        self.serving: list[str] = []  # node addresses, in the order they started serving
        self._vouched: set[tuple[bytes, str]] = set()
        self._bound: dict[tuple[bytes, str], bool] = {}  # the chain's answer, asked once
        self._recent: deque[Assignment] = deque(maxlen=MISS_WINDOW)
        self._unanswered: dict[str, Assignment] = {}
        self._requests_of: Counter[bytes] = Counter()  # requests per requester key

    def observe(self, message: Message) -> None:
        claim = ChannelClaim.from_message(message)
        if claim is not None:
            self._observe_claim(message.sender, claim)
            return
        body = accounting_of(message)
        if body is None:
            return
        if body.get("kind") == "request":
            self._observe_request(message)
        elif body.get("kind") == "response":
            self._observe_response(message, body)

    def order(self, request_id: str) -> tuple[str, ...]:
        assignment = self.requests.get(request_id)
        return assignment.order if assignment else ()

    def _credits(self, key: bytes, node: str) -> bool:
        if (key, node) not in self._vouched:
            return False
        if (key, node) not in self._bound:
            self._bound[(key, node)] = self.bindings.credits(key, node, self._vouched)
        return self._bound[(key, node)]

    def _observe_claim(self, key: bytes, claim: ChannelClaim) -> None:
        before = set(self._vouched)
        self._vouched |= self.bindings.vouched([(key, claim)])
        for _, node in self._vouched - before:
            if node not in self.serving and self._credits(key, node):
                self.serving.append(node)

    def _observe_request(self, message: Message) -> None:
        load: Counter[str] = Counter()
        for assignment in self._unanswered.values():
            if assignment.assignee:
                load[assignment.assignee] += 1
        for assignment in self._recent:
            if assignment.answered and assignment.answers[0].node != assignment.assignee and assignment.assignee:
                load[assignment.assignee] += 1
        order = tuple(sorted(self.serving, key=lambda node: (load[node], tiebreak(message.previous, node))))
        self._requests_of[message.sender] += 1
        assignment = Assignment(
            message.id,
            message.sequence,
            message.sender,
            order,
            body=accounting_of(message) or {},
            requester_count=self._requests_of[message.sender],
        )
        self.requests[message.id] = assignment
        self._unanswered[message.id] = assignment
        self._recent.append(assignment)

    def _observe_response(self, message: Message, body: dict) -> None:
        assignment = self.requests.get(str(body.get("request_id")))
        node = body.get("node")
        if assignment is None or not isinstance(node, str) or not is_address(node):
            return
        node = to_checksum_address(node)
        if message.sender == assignment.requester or not self._credits(message.sender, node):
            return  # a key answering itself, or a key the chain does not bind to the node it names
        if any(answer.node == node for answer in assignment.answers):
            return  # a node's first answer is its answer
        assignment.answers.append(Answer(message.sequence, node, bool(body.get("served")), message.id, body))
        self._unanswered.pop(assignment.request_id, None)
