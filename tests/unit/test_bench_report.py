"""BENCHMARKS.md is generated from bench/results.json alone (no measuring): one row per metric
with the figure before the hardening, its value, machine, anchor and target, and whether the
target is met; then where each measured transaction's gas went."""

import json

from bench.report import format_table, main, render_benchmarks, write_benchmarks

MACHINE = "AMD EPYC, 2 cores, Linux"
BEFORE = {"commit": "4ce07b15f1c2", "machine": MACHINE, "results": {"gas.round_trip_zk": 422_748}}


def row(report: str, metric: str) -> list[str]:
    (line,) = [line for line in report.splitlines() if line.startswith(f"| {metric} |")]
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_render__metric_with_target_and_anchor__shows_value_machine_anchor_target_and_met():
    report = render_benchmarks({"gas.round_trip_zk": 454_803, "gas.round_trip_quorum1": 218_044}, MACHINE)
    assert report.startswith("# Benchmarks\n")
    assert f"Machine: {MACHINE}." in report
    metric, before, value, change, machine, anchor, target, met, _ = row(report, "`gas.round_trip_zk`")
    assert (before, value, change, machine, target, met) == ("", "454,803", "", MACHINE, "≤ 430,000", "**no**")
    assert anchor == "Ritual Infernet EZKL round trip: median 861,471"
    assert row(report, "`gas.round_trip_quorum1`")[6:8] == ["≤ 230,000", "yes"]


def test_render__figures_before_hardening__shown_beside_the_new_with_the_change():
    results = {"gas.round_trip_zk": 462_765, "gas.round_trip_quorum3": 651_317, "host.load_average_at_start": 13.57}
    report = render_benchmarks(results, MACHINE, BEFORE)
    assert "*Before hardening*" in report and "4ce07b1" in report
    assert "Load average (1 min) when this run started: 13.57;" in report
    assert row(report, "`gas.round_trip_zk`")[1:4] == ["422,748", "462,765", "+9.5 %"]
    assert row(report, "`gas.round_trip_quorum3`")[1:4] == ["", "651,317", ""]
    assert row(report, "`gas.round_trip_quorum3`")[6:8] == ["≤ 700,000", "yes"]


def test_render__at_least_target_and_ratio__judged_in_their_direction():
    results = {"edge.minilm_throughput_ratio": 0.85, "gas.assign_10_nodes": 100_000, "gas.assign_1000_nodes": 104_000}
    before = {"results": {"gas.assign_10_nodes": 100_000, "gas.assign_1000_nodes": 100_000}}
    report = render_benchmarks(results, MACHINE, before)
    assert row(report, "`edge.minilm_throughput_ratio`")[2:8:5] == ["0.85", "**no**"]
    assert row(report, "assign 1000 / 10 nodes")[1:4] == ["1.000", "1.040", "+4.0 %"]
    assert row(report, "assign 1000 / 10 nodes")[6:8] == ["≤ 1.05", "yes"]


def test_render__unknown_metric_and_missing_targets__listed():
    report = render_benchmarks({"zk.new_figure": 3.14159}, MACHINE)
    assert row(report, "`zk.new_figure`")[2] == "3.142"
    assert "Not measured in this run:" in report and "`gas.round_trip_zk`" in report


def test_render__breakdown__one_row_per_transaction_in_lifecycle_order():
    breakdown = {
        "quorum1.submit": {"gas": 110_404, "base": 21_000, "calldata": 4_612, "calldata_bytes": 580, "own": 45_000,
                           "call.NodeCoordinator": 9_525, "call.ProofOfUse": 29_718, "sstore": 26_100,
                           "sstore_count": 9, "sload": 30_200, "sload_count": 22, "log": 8_953, "refund": 0},
        "quorum1.assign": {"gas": 61_747, "base": 21_000, "calldata": 2_900, "calldata_bytes": 356, "own": 21_253,
                           "call.NodeCoordinator": 16_594, "sstore": 5_800, "sstore_count": 2, "refund": 0},
    }
    report = render_benchmarks({"gas.round_trip_quorum1": 258_684}, MACHINE, None, breakdown)
    section = report[report.index("## Where the gas goes"):]
    assert section.index("quorum 1: assignNodes") < section.index("quorum 1: submitResult")
    cells = row(section, "quorum 1: submitResult + settlement")
    assert cells[1:5] == ["110,404", "21,000", "4,612 (580)", "45,000"]
    assert cells[5] == "NodeCoordinator 9,525; ProofOfUse 29,718"
    assert cells[6:10] == ["26,100 (9, 0)", "30,200 (22)", "8,953", "0"]


def test_write__from_results_file__regenerates_without_measuring(tmp_path, capsys):
    results, machine, out = tmp_path / "results.json", tmp_path / "machine.txt", tmp_path / "BENCHMARKS.md"
    before, breakdown = tmp_path / "before.json", tmp_path / "breakdown.json"
    results.write_text(json.dumps({"zk.constraints": 8984}))
    machine.write_text(MACHINE + "\n")
    before.write_text(json.dumps({"results": {"zk.constraints": 8742}}))
    main(["--results", str(results), "--machine", str(machine), "--out", str(out),
          "--before", str(before), "--breakdown", str(breakdown)])
    cells = row(out.read_text(), "`zk.constraints`")
    assert cells[:8] == ["`zk.constraints`", "8,742", "8,984", "+2.8 %", MACHINE, "", "≤ 12,000", "yes"]
    assert "wrote" in capsys.readouterr().out
    assert "## Where the gas goes" not in out.read_text()  # no breakdown file: no section
    machine.unlink()
    before.unlink()
    write_benchmarks(results, machine, out, before, breakdown)
    assert row(out.read_text(), "`zk.constraints`")[1:5] == ["", "8,984", "", "unknown"]



def test_format_table__metrics_and_ratio__sorted_with_targets_and_misses_marked():
    results = {"gas.round_trip_zk": 454_803, "zk.prove_seconds_p50": 0.4567, "gas.assign_10_nodes": 100_000,
               "gas.assign_1000_nodes": 104_000, "zk.new_figure": 3, "channel.messages_per_s": 1234.5}
    assert format_table(results).splitlines() == [
        "metric                                      value       target",
        "channel.messages_per_s                   1234.500             ",
        "gas.assign_1000_nodes                     104,000             ",
        "gas.assign_10_nodes                       100,000             ",
        "gas.round_trip_zk                         454,803    ≤ 430,000  NOT MET",
        "zk.new_figure                                   3             ",
        "zk.prove_seconds_p50                        0.457        ≤ 0.3  NOT MET",
        "assign 1000 / 10 nodes                      1.040       ≤ 1.05",
    ]
