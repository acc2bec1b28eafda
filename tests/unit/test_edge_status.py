"""`ape run edge_agent status`: a node's status (joynet.edge.node_status) as the lines the command
prints, and where a node keeps its journal unless told. Plain functions: no chain is needed."""

from pathlib import Path

from joynet import JOY
from joynet.edge import format_status
from joynet.edge.journal import default_journal_path

BUSY = {
    "node": "0x00000000000000000000000000000000000000A6",
    "registered": True,
    "active": True,
    "stake": 2_004 * JOY,
    "bonded": 3 * JOY // 2,
    "unbonding": 0,
    "capacity": 4,
    "active_tasks": 1,
    "load": 0.25,
    "missed_deadlines": 0,
    "head": 1_000,
    "lease_end": 1_020,
    "lease_running": True,
    "models": ["digits", "minilm"],
    "runtimes": ["joynet-int-mlp", "sentence-transformers"],
    "fees_unwithdrawn": 12_345 * JOY // 1_000,
    "jobs": {"submitted": 3, "computed": 1},
    "outcomes": {"settled": 3},
    "fees_withdrawn": 7 * JOY,
    "recent": [
        {"request": 12, "model": "digits", "state": "submitted", "outcome": "settled", "reason": None, "seconds": 1.2345},
        {"request": 13, "model": "minilm", "state": "declined", "outcome": None, "reason": "input too large", "seconds": None},
    ],
}
IDLE = {**BUSY, "registered": False, "active": False, "stake": 0, "bonded": 0, "unbonding": 5 * JOY, "capacity": 0,
        "active_tasks": 0, "missed_deadlines": 2, "lease_end": 0, "lease_running": False, "models": [], "fees_unwithdrawn": 0, "jobs": {}, "outcomes": {},
        "fees_withdrawn": 0, "recent": []}


def test_format_status__busy_node__one_line_per_field_then_one_per_recent_job():
    assert format_status(BUSY).splitlines() == [
        "node            0x00000000000000000000000000000000000000A6  (active)",
        "stake           2,004.00 JOY (1.50 bonded to open tasks, 0.00 unbonding)",
        "load            1 / 4 tasks, 0 missed deadline(s) in a row",
        "lease           until block 1020 (20 blocks from the head): drawn for new work",
        "models          digits, minilm",
        "runtimes        joynet-int-mlp, sentence-transformers",
        "fees            12.35 JOY to withdraw, 7.00 JOY withdrawn",
        "jobs            1 computed, 3 submitted (requests 3 settled)",
        "  #12     digits     submitted  settled     1.23 s",
        "  #13     minilm     declined                       input too large",
    ]


def test_format_status__unregistered_node_without_journal__says_so_with_none_and_a_dash():
    lines = format_status(IDLE).splitlines()
    assert lines[0].endswith("(inactive, not registered)")
    assert lines[1] == "stake           0.00 JOY (0.00 bonded to open tasks, 5.00 unbonding)"
    assert lines[2] == "load            0 / 0 tasks, 2 missed deadline(s) in a row"
    assert lines[3] == "lease           none: not drawn for new work"
    assert lines[4] == "models          -"
    assert lines[7] == "jobs            none (requests none)"
    assert len(lines) == 8


def test_format_status__lease_run_out__says_when_and_that_no_new_work_is_drawn():
    lines = format_status({**BUSY, "lease_running": False, "head": 1_030}).splitlines()
    assert lines[3] == "lease           ended at block 1020: not drawn for new work"


def test_default_journal_path__network_and_address__one_file_per_network_and_node_in_the_home():
    path = default_journal_path("local", "0x00000000000000000000000000000000000000A6")
    assert path == Path.home() / ".joynet" / "edge" / "local-0x00000000000000000000000000000000000000a6.sqlite"
