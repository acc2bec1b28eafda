"""bench.zk_prover.measure_zk: the split of a warm proof (witness, proof, its CPU time, the rest of
the call) for the default backend and snarkjs beside it, on real provers."""

from bench.zk_prover import measure_zk


def test_measure_zk__one_digit__split_adds_up_for_both_backends():
    results = measure_zk(1)
    assert results["zk.native_prover"] == 1
    # One digit: each median is that proof's figure, rounded to the millisecond.
    split = results["zk.witness_seconds_p50"] + results["zk.proof_seconds_p50"]
    assert abs(results["zk.prove_seconds_p50"] - split) <= 0.002
    assert results["zk.prove_call_seconds_p50"] >= results["zk.prove_seconds_p50"]
    assert results["zk.prove_call_overhead_seconds_p50"] >= 0
    # One core: the native proof's CPU time cannot exceed its wall time (beyond rounding).
    assert 0 < results["zk.proof_cpu_seconds_p50"] <= results["zk.proof_seconds_p50"] + 0.02
    # snarkjs's figure is its whole Node process's: the curve's worker threads run its multiexps.
    assert results["zk.proof_cpu_seconds_p50_snarkjs"] > 0 and results["zk.prove_seconds_p50_snarkjs"] > 0
    assert results["zk.load_average"] >= 0
