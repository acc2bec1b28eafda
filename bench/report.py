"""BENCHMARKS.md from bench/results.json: metric, value, machine, the anchor's figure, the target;
and the console table ``ape run bench`` prints (``format_table``).

`make bench` writes BENCHMARKS.md after measuring; to regenerate it from the last results without
measuring again: ``.venv/bin/python -m bench.report`` (reads bench/results.json,
bench/machine.txt, bench/before_hardening.json and bench/breakdown.json, writes BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from joynet.chain.deployment_file import PROJECT_ROOT

RESULTS_PATH = PROJECT_ROOT / "bench" / "results.json"
MACHINE_PATH = PROJECT_ROOT / "bench" / "machine.txt"
REPORT_PATH = PROJECT_ROOT / "BENCHMARKS.md"
# The figures of the last run before the request lifecycle was hardened (committed; the
# "before hardening" column).
BEFORE_PATH = PROJECT_ROOT / "bench" / "before_hardening.json"
# Where each measured transaction's gas went (from traces): the "Where the gas goes" section.
BREAKDOWN_PATH = PROJECT_ROOT / "bench" / "breakdown.json"


@dataclass(frozen=True)
class Target:
    bound: float
    at_most: bool = True  # False: the value must be at least ``bound``

    def met(self, value: float) -> bool:
        return value <= self.bound if self.at_most else value >= self.bound

    def __str__(self) -> str:
        return f"{'≤' if self.at_most else '≥'} {_number(self.bound)}"


@dataclass(frozen=True)
class Metric:
    what: str
    anchor: str = ""
    target: Target | None = None


# What each figure is, the outside figure it is compared with and its target. Gas of a
# step is one transaction's; a round trip is the sum of its steps' transactions.
METRICS: dict[str, Metric] = {
    "gas.register_model": Metric(
        "register a model: commitModelRegistration + registerModel (before: registerModel alone)"
    ),
    "gas.commit_model_registration": Metric("commitModelRegistration (the first step of a registration)"),
    "gas.register_model_tx": Metric("registerModel, from a later block (the second step)"),
    "gas.register_node": Metric("register a node: stake, capacity, three models"),
    "gas.renew_lease": Metric("renewLease: a node's agent keeps it drawn for leaseBlocks more blocks"),
    "gas.request_paid": Metric("requestInference paid by a token transfer: escrow only (before: escrow + assignment)"),
    "gas.assign_nodes": Metric("assignNodes, quorum 1 (its own transaction since the hardening)"),
    "gas.submit_settle_quorum1": Metric("result + settlement, quorum 1"),
    "gas.submit_results_batch1_per_result": Metric("submitResults of 1 assigned result (+ settlement)"),
    "gas.submit_results_batch8_per_result": Metric("submitResults of 8 results of one node, per result"),
    "gas.submit_results_batch32_per_result": Metric("submitResults of 32 results of one node, per result"),
    "gas.submit_assign_settle_quorum1": Metric(
        "submitResult of the unassigned request by its drawn node: assignment + result + settlement"
    ),
    "gas.round_trip_quorum1": Metric(
        "request + the drawn node's result, which assigns it + settlement, quorum 1",
        "Ritual Infernet create + deliver 352,544 (no payment); Chainlink Functions ~378,000",
        Target(230_000),
    ),
    "gas.round_trip_quorum1_assigned_first": Metric(
        "request + assignNodes alone + result + settlement, quorum 1 (the requester's client assigns)"
    ),
    "gas.assign_nodes_batch10": Metric(
        "assignNodesBatch of 10 pending quorum-1 requests (an agent assigns what it sees at once)"
    ),
    "gas.assign_nodes_batch10_per_request": Metric("the above per request"),
    "gas.round_trip_quorum1_batched": Metric(
        "request + a tenth of a 10-request assignment batch + result + settlement, quorum 1",
        "",
        Target(230_000),
    ),
    "gas.request_paid_quorum3": Metric("requestInference of a quorum-3 model, paid by a token transfer"),
    "gas.assign_nodes_quorum3": Metric("assignNodes, quorum 3 (three nodes)"),
    "gas.commit_result_first": Metric("commitResult, the first node of a quorum (writes the mask)"),
    "gas.commit_result": Metric("commitResult, a later node of a quorum"),
    "gas.commit_results_quorum3": Metric("the three commitResult transactions of a quorum-3 request"),
    "gas.reveal_result": Metric("revealResult, not the last"),
    "gas.reveal_and_settle_quorum3": Metric("revealResult, the last of three: judge + settlement (three nodes paid)"),
    "gas.reveal_results_quorum3": Metric("the three revealResult transactions of a quorum-3 request"),
    "gas.round_trip_quorum3": Metric(
        "request + assignment + three commitments + three reveals (before: request + three matching results)",
        "",
        Target(700_000),
    ),
    "gas.submit_generation": Metric("submitResult of a tolerant request's generator (public, not settled)"),
    "gas.reveal_and_settle_tolerant3": Metric(
        "revealResult of the last validator: judge + settlement (three nodes paid)"
    ),
    "gas.round_trip_tolerant3": Metric(
        "request + assignment + the generator's result + two validators' votes and reveals, tolerant quorum 3"
    ),
    "gas.tolerant3_to_quorum3": Metric("the above ÷ the quorum-3 round trip (one commitment fewer)"),
    "gas.timeout_refund": Metric("closeExpired of a silent node's request: refund + slash"),
    "gas.timeout_refund_unassigned": Metric("closeExpired of a request nobody assigned: refund"),
    "gas.assign_10_nodes": Metric("assignNodes with 10 eligible nodes (before: a request, with its assignment)"),
    "gas.assign_1000_nodes": Metric("assignNodes with 1,000 eligible nodes (target on the ratio below)"),
    "zk.constraints": Metric("R1CS constraints of the digits MLP circuit", "", Target(12_000)),
    "zk.witness_seconds_p50": Metric("witness generation, median"),
    "zk.prove_seconds_p50": Metric(
        "witness + Groth16 proof, warm prover (native when zk.native_prover is 1), median",
        "EZKL on this model: 7.3 s (private weights)",
        Target(0.3),
    ),
    "zk.prove_seconds_p50_snarkjs": Metric("the same with snarkjs, in the same run (target on the ratio below)"),
    "zk.proof_seconds_p50": Metric("the Groth16 proof alone (zk.prove_seconds_p50 without the witness), median"),
    "zk.proof_cpu_seconds_p50": Metric(
        "CPU time of that proof, median: the native prover's on one core, what it costs on an idle core"
    ),
    "zk.proof_cpu_seconds_p50_snarkjs": Metric("the same with snarkjs (its worker threads added up)"),
    "zk.prove_call_overhead_seconds_p50": Metric(
        "the rest of a ZKProver.prove call: inputs and commitments, pipes, the .wtns file, snarkjs's check"
    ),
    "zk.load_average": Metric("the machine's 1-minute load average when the proofs started"),
    "gas.groth16_verify_execution": Metric(
        "verifyProof execution gas", "EZKL on this model: 476k-577k gas", Target(215_000)
    ),
    "gas.groth16_verify": Metric("verifyProof as a whole transaction"),
    "gas.groth16_batch_verify_per_proof_n16": Metric(
        "DigitsMLPBatchVerifier.verifyProofs of 16 distinct proofs, execution gas ÷ 16 "
        "(floor of N + 3 pairings under EIP-1108: about 56,500; docs/benchmarks.md)",
        "",
        Target(50_000),
    ),
    "gas.groth16_batch_verify_per_proof_n64": Metric(
        "the same with 64 proofs (floor about 48,700: one pairing and two scalar multiplications a proof)",
        "",
        Target(25_000),
    ),
    "gas.groth16_batch_verify_tx_per_proof_n16": Metric("the 16-proof transaction as a whole ÷ 16"),
    "gas.groth16_batch_verify_tx_per_proof_n64": Metric("the 64-proof transaction as a whole ÷ 64"),
    "gas.groth16_batch_to_single_n16": Metric("batch execution gas per proof at 16 ÷ one verifyProof's"),
    "gas.groth16_batch_to_single_n64": Metric("the same at 64"),
    "zk.batch_proofs_seconds": Metric("proving the 64 distinct proofs of the batch figures (once a run)"),
    "gas.zk_round_trip_batch16_per_request": Metric(
        "16 requests (from a balance) + one submitResults of their 16 proven results by the drawn node, "
        "which assigns them (one batch check), ÷ 16: what an edge agent's batch costs",
        "",
        Target(150_000),
    ),
    "gas.zk_round_trip_batch16_assigned_first_per_request": Metric(
        "the same with one assignNodesBatch of the 16 before their results"
    ),
    "gas.zk_submit_results_batch16_per_result": Metric(
        "the assigned batch's submitResults alone ÷ 16 (batch check + 16 settlements)"
    ),
    "gas.zk_submit_assign_results_batch16_per_result": Metric(
        "the unassigned batch's submitResults alone ÷ 16 (batch check + 16 assignments and settlements)"
    ),
    "gas.request_from_balance": Metric("requestInferenceFromBalance: escrow only (before: escrow + assignment)"),
    "gas.assign_nodes_zk": Metric("assignNodes of the ZK request"),
    "gas.submit_settle_zk": Metric("proven result (Groth16 verified on chain) + settlement"),
    "gas.submit_assign_settle_zk": Metric(
        "the drawn node's proven result on the unassigned request: assignment + Groth16 + settlement"
    ),
    "gas.round_trip_zk": Metric(
        "request (paid from a deposited balance) + the drawn node's proven result, which assigns it + settlement",
        "Ritual Infernet EZKL round trip: median 861,471",
        Target(430_000),
    ),
    "gas.round_trip_zk_assigned_first": Metric(
        "request (from a balance) + assignNodes alone + proven result + settlement"
    ),
    "gas.round_trip_zk_transfer": Metric("the same, the request paid by a token transfer"),
    "gas.round_trip_zk_batched": Metric(
        "request (from a balance) + a tenth of a 10-request assignment batch + proven result + settlement",
        "",
        Target(430_000),
    ),
    "zk.ezkl_prove_seconds": Metric("EZKL 23 proof of the same network, measured here"),
    "gas.ezkl_verify": Metric("EZKL verifier call, same network, measured here", "EZKL on this model: 476k-577k gas"),
    "zk.cnn_constraints": Metric(
        "R1CS constraints of the digits CNN's circuit (51,434 parameters, public weights); 2**16 is the ceremony's",
        "estimated 27,038; the generated circuit 25,196",
        Target(65_536),
    ),
    "zk.cnn_prove_seconds_p50": Metric(
        "digits CNN: witness + Groth16 proof, warm prover, median",
        "snarkjs, measured once: 3.59 s; EZKL on this CNN: zk.cnn_ezkl_prove_seconds, this run",
        Target(10),
    ),
    "zk.cnn_prove_peak_memory_mb": Metric(
        "digits CNN: peak memory of the prover's workers",
        "snarkjs, measured once: 468 MB; EZKL: zk.cnn_ezkl_prove_peak_memory_mb, this run",
        Target(4_096),
    ),
    "zk.cnn_ezkl_prove_seconds": Metric("EZKL 23 proof of the same CNN, measured in the same run"),
    "zk.cnn_ezkl_setup_seconds": Metric("EZKL key generation for the CNN"),
    "zk.cnn_ezkl_logrows": Metric("log2 of the CNN's Halo2 rows after EZKL's calibration"),
    "zk.cnn_ezkl_prove_peak_memory_mb": Metric("peak memory of the process making EZKL's CNN proof"),
    "zk.cnn_ezkl_prove_cpu_seconds": Metric("CPU time (user + system) of that process, its imports included"),
    "edge.minilm_throughput_ratio": Metric(
        "MiniLM embeddings/s through InferenceNode ÷ bare sentence-transformers", "", Target(0.9, at_most=False)
    ),
    "onnx.throughput_ratio": Metric(
        "a model of one's own (PyTorch CNN exported to ONNX, 256 images a request): images/s through "
        "InferenceNode ÷ bare onnxruntime, both from the request's JSON",
        "",
        Target(0.9, at_most=False),
    ),
    "llm.throughput_ratio": Metric(
        "SmolLM2-135M-Instruct tokens/s through the causal-lm runtime ÷ bare transformers generate, same weights",
        "",
        Target(0.9, at_most=False),
    ),
    "llm.tokens_per_s_node": Metric("SmolLM2 greedy tokens/s through the runtime (one thread)"),
    "llm.tokens_per_s_bare": Metric("the same with transformers' generate"),
    "llm.validate_to_generate": Metric("validating a 32-token answer (one prefill) ÷ generating it", "", Target(0.2)),
    "llm.validate_seconds": Metric("validating a 32-token answer: prefill, activation comparison, greedy check"),
    "llm.generate_seconds": Metric("generating that answer"),
    "llm.false_accepts": Metric(
        "tolerant check: dishonest answers accepted (swapped, int8, changed prompt, cut, altered)"
    ),
    "llm.false_rejects": Metric("tolerant check: honest answers rejected (other threads, bfloat16)"),
    "llm.trials": Metric("tolerant check: trials"),
    "edge.agent_peak_rss_mb": Metric(
        "peak memory (MB) of one edge agent serving digits (ZK), MiniLM, an ONNX CNN and SmolLM2, prover worker included",
        "",
        Target(2000),
    ),
    "e2e.latency_llm_p50_s": Metric(
        "SmolLM2 chat (32 tokens at most) request → settled under the tolerant policy (a generator, two "
        "validators), local chain, median"
    ),
    "e2e.latency_zk_p50_s": Metric("ZK request → settled, local chain, median", "", Target(2.0)),
    "e2e.latency_minilm_p50_s": Metric("MiniLM request → settled, local chain, median"),
    "edge.zk_inferences_per_min": Metric("ZK inferences per minute, one edge agent"),
    "channel.messages_per_s": Metric("channel messages signed, appended and verified per second (embedded ledger)"),
    "feeless.digits_p50_s": Metric(
        "feeless ZK digits request -> answer verified by the requester (snarkjs), median", "", Target(1.5)
    ),
    "feeless.digits_p90_s": Metric("the same, 90th percentile"),
    "feeless.minilm_p50_s": Metric("feeless MiniLM request -> verified answer, median", "", Target(1.0)),
    "feeless.minilm_p90_s": Metric("the same, 90th percentile"),
    "gateway.feeless_minilm_p50_s": Metric(
        "feeless MiniLM embedding through the gateway (POST /v1/embeddings -> checked answer), median", "", Target(1.0)
    ),
    "gateway.embeddings_per_s": Metric(
        "MiniLM (quorum 3) embeddings per second through the gateway, 4 requests at a time"
    ),
    "client.embeddings_per_s": Metric("the same requests through the Python client (ModelMarketplace)"),
    "gas.link_stream": Metric("IOTAValidator linkStream with two committee signatures"),
    "gas.fund_budget": Metric("IOTAValidator fundBudget (a feeless model's first funding)"),
    "gas.checkpoint_batch_1": Metric("IOTAValidator checkpoint of 1 feeless inference, paid from the budget"),
    "gas.checkpoint_batch_1000": Metric("IOTAValidator checkpoint of 1,000 feeless inferences, four nodes paid"),
    "gas.feeless_per_inference_batch1000": Metric(
        "the above per inference", "Livepeer winning-ticket redemption ~350,000", Target(200)
    ),
    "gas.checkpoint_batch_1_unpaid": Metric("checkpoint of 1 inference of a model without a budget"),
    "gas.checkpoint_batch_1000_unpaid": Metric("checkpoint of 1,000 inferences of a model without a budget"),
    "gas.feeless_per_inference_batch1000_unpaid": Metric("the above per inference (counted, nothing paid)"),
    "host.load_average_at_start": Metric(
        "1-minute load average when the bench started: the machine is shared, times grow with it"
    ),
}
# Targets on a ratio of two measured figures: (numerator, denominator, target, what it shows).
RATIOS = {
    "assign 1000 / 10 nodes": (
        "gas.assign_1000_nodes",
        "gas.assign_10_nodes",
        Target(1.05),
        "assignment gas does not grow with the node count",
    ),
    "checkpoint of 1,000 paid / unpaid": (
        "gas.checkpoint_batch_1000",
        "gas.checkpoint_batch_1000_unpaid",
        Target(1.5),
        "paying the nodes from the budget costs little beside counting their answers",
    ),
    "gateway / Python client embeddings per second": (
        "gateway.embeddings_per_s",
        "client.embeddings_per_s",
        Target(0.9, at_most=False),
        "the gateway's HTTP, checks and receipts cost little beside the protocol's own round trip",
    ),
    "native / snarkjs proof (witness + proof)": (
        "zk.prove_seconds_p50",
        "zk.prove_seconds_p50_snarkjs",
        Target(0.5),
        "the native prover takes at most half snarkjs's time on the same zkey and witnesses",
    ),
    "CNN proof: EZKL / this project's Groth16": (
        "zk.cnn_ezkl_prove_seconds",
        "zk.cnn_prove_seconds_p50",
        Target(10, at_most=False),
        "the generated circuit proves the same CNN at least ten times faster than EZKL (Halo2)",
    ),
    "result in a batch of 32 / alone": (
        "gas.submit_results_batch32_per_result",
        "gas.submit_settle_quorum1",
        Target(0.85),
        "a node's results batched cost less each than alone",
    ),
}


def _number(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _change(before: float | None, now: float) -> str:
    if before is None or not before:
        return ""
    return f"{(now - before) / before:+.1%}".replace("%", " %")


def render_benchmarks(
    results: dict[str, float], machine: str, before: dict | None = None, breakdown: dict | None = None
) -> str:
    """The BENCHMARKS.md text: the described metrics in this order, then any others. ``before``
    (the contents of bench/before_hardening.json: "results", "machine", "commit") adds the
    figures of the earlier run beside the new ones; ``breakdown`` (bench/breakdown.json) the
    section on where each measured transaction's gas went."""
    old = (before or {}).get("results", {})
    lines = [
        "# Benchmarks",
        "",
        "Generated by `make bench` from `bench/results.json` (regenerate without measuring again:",
        "`.venv/bin/python -m bench.report`). Gas from real transactions on a local anvil;",
        "times on the machine named. Anchors are outside figures the project compares with. Each step",
        "of the request lifecycle is its own transaction; a round trip is the sum of its steps, in",
        "the steady state (after every node served a round trip in the same usage epoch).",
        "",
        f"Machine: {machine}.",
    ]
    if "host.load_average_at_start" in results:
        lines[-1] += (
            f" Load average (1 min) when this run started: {_number(results['host.load_average_at_start'])};"
            " the machine is shared, and the times (not the gas) grow with its load."
        )
    if before:
        lines += [
            "",
            "*Before hardening*: the same benchmark before the request lifecycle was hardened (commit",
            f"{before.get('commit', '?')[:7]}, {before.get('machine', 'unknown machine')}; `bench/before_hardening.json`).",
            "A request then assigned its nodes within the request's transaction, a quorum's nodes",
            "submitted their results directly and a model was registered in one transaction.",
        ]
    lines += [
        "",
        "| metric | before hardening | value | change | machine | anchor | target | met | what it is |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    ordered = [name for name in METRICS if name in results] + sorted(set(results) - set(METRICS))
    for name in ordered:
        metric = METRICS.get(name, Metric(""))
        target = metric.target
        met = ("yes" if target.met(results[name]) else "**no**") if target else ""
        was = old.get(name)
        lines.append(
            f"| `{name}` | {'' if was is None else _number(was)} | {_number(results[name])} | {_change(was, results[name])} "
            f"| {machine} | {metric.anchor} | {target or ''} | {met} | {metric.what} |"
        )
    for label, (numerator, denominator, target, what) in RATIOS.items():
        if numerator in results and denominator in results and results[denominator]:
            ratio = results[numerator] / results[denominator]
            was = old[numerator] / old[denominator] if old.get(numerator) and old.get(denominator) else None
            met = "yes" if target.met(ratio) else "**no**"
            lines.append(
                f"| {label} | {'' if was is None else f'{was:.3f}'} | {ratio:.3f} | {_change(was, ratio)} | {machine} "
                f"|  | {target} | {met} | {what} |"
            )
    missing = [name for name, metric in METRICS.items() if metric.target and name not in results]
    if missing:
        lines += ["", "Not measured in this run: " + ", ".join(f"`{name}`" for name in missing) + "."]
    if breakdown:
        lines += render_breakdown(breakdown)
    return "\n".join(lines) + "\n"


# Breakdown rows: a measured transaction by its "<round trip>.<step>" name, and what it is.
BREAKDOWN_STEPS = {
    "quorum1.request": "quorum 1: requestInference (token transfer)",
    "quorum1.assign": "quorum 1: assignNodes",
    "quorum1.submit": "quorum 1: submitResult + settlement",
    "quorum3.request": "quorum 3: requestInference",
    "quorum3.assign": "quorum 3: assignNodes",
    "quorum3.commit1": "quorum 3: commitResult, first",
    "quorum3.commit2": "quorum 3: commitResult, second",
    "quorum3.commit3": "quorum 3: commitResult, third",
    "quorum3.reveal1": "quorum 3: revealResult, first",
    "quorum3.reveal2": "quorum 3: revealResult, second",
    "quorum3.reveal3": "quorum 3: revealResult, last: judge + settlement",
    "zk.request": "ZK: requestInferenceFromBalance",
    "zk.assign": "ZK: assignNodes",
    "zk.submit": "ZK: submitResult with a Groth16 proof + settlement",
    "timeout.close": "closeExpired: refund + slash",
    "timeout_unassigned.close": "closeExpired of an unassigned request: refund",
    "assign_10_nodes.assign": "assignNodes, 10 eligible nodes",
    "assign_1000_nodes.assign": "assignNodes, 1,000 eligible nodes",
}


def render_breakdown(breakdown: dict[str, dict[str, float]]) -> list[str]:
    """The "Where the gas goes" section: one row per measured transaction. Calls are the
    contracts the marketplace called, each with all it spent (its own calls included); "own" is
    the rest of the execution, the marketplace's (cold account access of its calls included).
    The columns add up: gas = base + calldata + own + calls - refund."""
    lines = [
        "",
        "## Where the gas goes",
        "",
        "Each measured transaction from anvil's traces (`bench/breakdown.json`). gas = base + calldata",
        "+ own + calls − refund. *Own*: the execution of the contract called, without the contracts it",
        "called (*calls*: each with everything it spent). *Writes*, *reads* and *events* count across",
        "all contracts the transaction ran (gas, number of operations; *fresh*: zero-to-nonzero writes,",
        "20,000 gas more each). *Refund*: cleared storage, taken off at the end.",
        "",
        "| transaction | gas | base | calldata (bytes) | own | calls | writes (n, fresh) | reads (n) | events | refund |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    ordered = [name for name in BREAKDOWN_STEPS if name in breakdown] + sorted(set(breakdown) - set(BREAKDOWN_STEPS))
    for name in ordered:
        row = breakdown[name]
        calls = "; ".join(
            f"{key.removeprefix('call.')} {_number(value)}" for key, value in row.items() if key.startswith("call.")
        )
        lines.append(
            f"| {BREAKDOWN_STEPS.get(name, name)} | {_number(row['gas'])} | {_number(row['base'])} "
            f"| {_number(row['calldata'])} ({row['calldata_bytes']}) | {_number(row['own'])} | {calls} "
            f"| {_number(row.get('sstore', 0))} ({row.get('sstore_count', 0)}, {row.get('sstore_fresh', 0)}) "
            f"| {_number(row.get('sload', 0))} ({row.get('sload_count', 0)}) | {_number(row.get('log', 0))} "
            f"| {_number(row['refund'])} |"
        )
    return lines


def write_benchmarks(
    results_path: Path = RESULTS_PATH,
    machine_path: Path = MACHINE_PATH,
    out_path: Path = REPORT_PATH,
    before_path: Path = BEFORE_PATH,
    breakdown_path: Path = BREAKDOWN_PATH,
) -> Path:
    results = json.loads(Path(results_path).read_text(encoding="utf8"))
    machine = Path(machine_path).read_text(encoding="utf8").strip() if Path(machine_path).exists() else "unknown"
    before, breakdown = (
        json.loads(Path(path).read_text(encoding="utf8")) if Path(path).exists() else None
        for path in (before_path, breakdown_path)
    )
    Path(out_path).write_text(render_benchmarks(results, machine, before, breakdown), encoding="utf8")
    return Path(out_path)


def format_table(results: dict[str, float]) -> str:
    """The results as the console table ``ape run bench`` prints: each metric with its target and
    ``NOT MET`` where it is missed, then the ratios whose two figures were measured."""
    lines = [f"{'metric':<36} {'value':>12} {'target':>12}"]
    for name, value in sorted(results.items()):
        target = METRICS[name].target if name in METRICS else None
        shown = (
            f"{value:>12.3f}"
            if name.endswith(("seconds", "ratio", "_s")) or "_seconds_" in name
            else f"{value:>12,.0f}"
        )
        verdict = ("" if target.met(value) else "  NOT MET") if target else ""
        lines.append(f"{name:<36} {shown} {str(target) if target else '':>12}{verdict}")
    for label, (numerator, denominator, target, _) in RATIOS.items():
        if numerator in results and denominator in results:
            ratio = results[numerator] / results[denominator]
            lines.append(f"{label:<36} {ratio:>12.3f} {str(target):>12}{'' if target.met(ratio) else '  NOT MET'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS_PATH)
    parser.add_argument("--machine", type=Path, default=MACHINE_PATH)
    parser.add_argument("--out", type=Path, default=REPORT_PATH)
    parser.add_argument("--before", type=Path, default=BEFORE_PATH)
    parser.add_argument("--breakdown", type=Path, default=BREAKDOWN_PATH)
    args = parser.parse_args(argv)
    if not args.results.exists():
        parser.exit(1, f"bench_report: no {args.results}: run `make bench` first\n")
    print(f"wrote {write_benchmarks(args.results, args.machine, args.out, args.before, args.breakdown)}")


if __name__ == "__main__":
    main()
