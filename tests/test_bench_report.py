"""BENCHMARKS.md is generated from bench/results.json alone (no measuring): one row per metric
with its value, machine, anchor and target, and whether the target is met."""

import json

from joynet.bench_report import main, render_benchmarks, write_benchmarks

MACHINE = "AMD EPYC, 2 cores, Linux"


def row(report: str, metric: str) -> list[str]:
    (line,) = [line for line in report.splitlines() if line.startswith(f"| {metric} |")]
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_render__metric_with_target_and_anchor__shows_value_machine_anchor_target_and_met():
    report = render_benchmarks({"gas.round_trip_zk": 454_803, "gas.round_trip_quorum1": 218_044}, MACHINE)
    assert report.startswith("# Benchmarks\n")
    metric, value, machine, anchor, target, met, _ = row(report, "`gas.round_trip_zk`")
    assert (value, machine, target, met) == ("454,803", MACHINE, "≤ 430,000", "**no**")
    assert anchor == "Ritual Infernet EZKL round trip: median 861,471"
    assert row(report, "`gas.round_trip_quorum1`")[4:6] == ["≤ 220,000", "yes"]


def test_render__at_least_target_and_ratio__judged_in_their_direction():
    results = {"edge.minilm_throughput_ratio": 0.85, "gas.assign_10_nodes": 100_000, "gas.assign_1000_nodes": 104_000}
    report = render_benchmarks(results, MACHINE)
    assert row(report, "`edge.minilm_throughput_ratio`")[1:6:4] == ["0.85", "**no**"]
    assert row(report, "assign 1000 / 10 nodes")[1] == "1.040"
    assert row(report, "assign 1000 / 10 nodes")[4:6] == ["≤ 1.05", "yes"]


def test_render__unknown_metric_and_missing_targets__listed():
    report = render_benchmarks({"zk.new_figure": 3.14159}, MACHINE)
    assert row(report, "`zk.new_figure`")[1] == "3.142"
    assert "Not measured in this run:" in report and "`gas.round_trip_zk`" in report


def test_write__from_results_file__regenerates_without_measuring(tmp_path, capsys):
    results, machine, out = tmp_path / "results.json", tmp_path / "machine.txt", tmp_path / "BENCHMARKS.md"
    results.write_text(json.dumps({"zk.constraints": 8984}))
    machine.write_text(MACHINE + "\n")
    main(["--results", str(results), "--machine", str(machine), "--out", str(out)])
    assert row(out.read_text(), "`zk.constraints`")[:6] == ["`zk.constraints`", "8,984", MACHINE, "", "≤ 12,000", "yes"]
    assert "wrote" in capsys.readouterr().out
    machine.unlink()
    write_benchmarks(results, machine, out)
    assert row(out.read_text(), "`zk.constraints`")[2] == "unknown"
