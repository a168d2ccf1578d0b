"""The command line: every command, and every error path ends in one line and exit code 2."""

import json
import subprocess
import sys

import pytest

from milestones import catalog, papers
from milestones.cli import main


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_shows_every_paper(capsys):
    code, out, _ = run_cli(capsys, "list")
    assert code == 0
    for paper in catalog.PAPERS:
        assert paper.id in out
    assert f"of {len(catalog.PAPERS)} papers implemented" in out


def test_list_json_has_catalog_fields_and_computed_status(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "--runs", str(tmp_path), "list", "--json")
    rows = {row["id"]: row for row in json.loads(out)}
    assert code == 0 and len(rows) == len(catalog.PAPERS)
    backprop = rows["backprop"]
    assert backprop["year"] == 1986 and backprop["builds_on"] == []
    assert backprop["status"] | {"verdict": None} == {"notes": True, "model": True, "equivalence_test": True,
                                                       "experiment": True, "implemented": True, "verdict": None}
    assert rows["grpo"]["status"]["experiment"] is False


def test_show_and_cite(capsys):
    code, out, _ = run_cli(capsys, "show", "backprop")
    assert code == 0 and "Learning representations by back-propagating errors" in out
    assert "claim:" in out and "xor_sweeps" in out and "built upon by:" in out
    code, out, _ = run_cli(capsys, "cite", "backprop")
    assert code == 0 and out.startswith("@article{") and "Rumelhart" in out and "1986" in out


def test_run_smoke_writes_result_and_resume_completes(capsys, tmp_path):
    out_dir = tmp_path / "bp"
    code, out, _ = run_cli(capsys, "run", "backprop", "--scale", "smoke", "--out", str(out_dir), "--quiet",
                           "--set", "xor_restarts=1")
    assert code == 0 and "result:" in out
    result = json.loads((out_dir / "result.json").read_text())
    assert result["paper"] == "backprop" and result["config"]["xor_restarts"] == 1
    assert result["overrides"] == {"xor_restarts": 1} and "custom config, not the reference run" in out
    assert isinstance(result["holds"], bool) and result["wall_s"] > 0
    code, again, _ = run_cli(capsys, "run", "backprop", "--scale", "smoke", "--out", str(out_dir), "--quiet",
                             "--set", "xor_restarts=1", "--resume")
    assert code == 0
    assert json.loads((out_dir / "result.json").read_text())["metrics"] == result["metrics"]


def test_reproduce_writes_summary(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "reproduce", "backprop", "--scale", "smoke", "--out", str(tmp_path / "r"), "--quiet")
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert code == 0 and summary["papers"][0]["paper"] == "backprop"
    assert (tmp_path / "r" / "backprop" / "result.json").is_file()
    assert "runs hold their claim" in out


def test_reproduce_over_seeds_runs_each_seed_and_counts_the_seeds_each_check_holds_on(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "reproduce", "backprop", "--scale", "smoke", "--seeds", "0,1",
                           "--out", str(tmp_path / "r"), "--quiet")
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert code == 0 and summary["seeds"] == [0, 1] and [r["seed"] for r in summary["papers"]] == [0, 1]
    for seed in (0, 1):
        result = json.loads((tmp_path / "r" / "backprop" / f"seed-{seed}" / "result.json").read_text())
        assert result["seed"] == seed
    (folded,) = summary["over_seeds"]
    rows = summary["papers"]
    assert folded["paper"] == "backprop" and folded["seeds"] == [0, 1]
    assert [c["holds_on"] for c in folded["checks"]] == [sum(r["checks"][k]["holds"] for r in rows)
                                                         for k in range(len(rows[0]["checks"]))]
    assert folded["verdict"] in out and "on every seed" in out


def check_row(holds: bool, control: bool = False) -> dict:
    return {"what": "w", "holds": holds, "control": control}


@pytest.mark.parametrize("outcomes, verdict, stable", [
    ([[True, True]] * 3, "holds on 3 of 3 seeds", True),
    ([[True, False, True]] * 3, "partly reproduces: 2 of 3 checks on every seed", True),
    ([[False, False]] * 3, "does not hold on any of 3 seeds", True),
    ([[True, True], [True, False], [True, False]], "unstable: b holds on 1 of 3", False),
])
def test_verdicts_fold_over_seeds(outcomes, verdict, stable):
    runs = [{"seed": s, "checks": [check_row(h) | {"name": "abc"[k]} for k, h in enumerate(row)]}
            for s, row in enumerate(outcomes)]
    folded = papers.over_seeds(runs)
    assert folded["verdict"] == verdict and folded["stable"] is stable and folded["seeds"] == [0, 1, 2]


def test_a_failing_control_or_a_crash_decides_the_verdict_over_seeds():
    control_fails = [{"seed": s, "checks": [check_row(True), check_row(False, control=True)]} for s in range(3)]
    assert papers.over_seeds(control_fails)["verdict"] == "does not hold on any of 3 seeds"
    crashed = [{"seed": 0, "checks": [check_row(True)]}, {"seed": 1, "verdict": "error", "checks": []}]
    folded = papers.over_seeds(crashed)
    assert folded["verdict"] == "error on seed 1" and not folded["stable"] and folded["checks"][0]["holds_on"] == 1


@pytest.mark.parametrize("argv, message", [
    (["show", "backprob"], "did you mean backprop"),
    (["run", "transformr"], "did you mean transformer"),
    (["run", "grpo"], "has no experiment yet"),
    (["cite", "nothing-like-it"], "unknown paper"),
    (["run", "backprop", "--set", "bogus=1"], "valid keys:"),
    (["run", "backprop", "--set", "xor_sweeps=many"], "expected int"),
    (["run", "backprop", "--set", "xor_sweeps"], "expects key=value"),
    (["run", "backprop", "--device", "cuda:7"], "not available"),
    (["reproduce", "backprop", "--seeds", "0,0"], "distinct integers"),
    (["reproduce", "backprop", "--seeds", "one"], "expected integers"),
])
def test_user_errors_print_one_line_and_exit_2(capsys, tmp_path, argv, message):
    code, _, err = run_cli(capsys, *argv, "--out", str(tmp_path / "x")) if argv[0] == "run" else run_cli(capsys, *argv)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_an_output_folder_that_cannot_be_created_is_a_one_line_error(capsys, tmp_path):
    (tmp_path / "a-file").write_text("")
    for command in ("run", "reproduce"):
        code, out, err = run_cli(capsys, command, "backprop", "--scale", "smoke", "--quiet",
                                 "--out", str(tmp_path / "a-file" / "runs"))
        assert code == 2 and "cannot create the output folder" in err and "Traceback" not in out + err


def test_existing_out_without_resume_and_resume_without_out(capsys, tmp_path):
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "result.json").write_text("{}")
    code, _, err = run_cli(capsys, "run", "backprop", "--scale", "smoke", "--out", str(tmp_path / "old"))
    assert code == 2 and "already holds a run" in err
    code, _, err = run_cli(capsys, "run", "backprop", "--resume", "--out", str(tmp_path / "missing"))
    assert code == 2 and "does not exist" in err


def test_corrupt_checkpoint_on_resume_is_a_user_error(capsys, tmp_path):
    out_dir = tmp_path / "bp"
    run_cli(capsys, "run", "backprop", "--scale", "smoke", "--out", str(out_dir), "--quiet")
    victim = next((out_dir / "checkpoints").glob("*.safetensors"))
    victim.write_bytes(b"garbage")
    code, _, err = run_cli(capsys, "run", "backprop", "--scale", "smoke", "--out", str(out_dir), "--resume")
    assert code == 2 and "corrupt" in err and len(err.strip().splitlines()) == 1


def test_installed_entry_point_exits_2_without_traceback():
    proc = subprocess.run([sys.executable, "-m", "milestones", "run", "no_such_paper"], capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown paper" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "milestones", "run", "backprop", "--scale", "huge"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_bench_prints_a_ratio_and_refuses_papers_without_a_benchmark(capsys):
    code, out, _ = run_cli(capsys, "bench", "lstm", "gpt2", "--quick")
    assert code == 0 and "matmul peak" in out and "nn.LSTM" in out and out.rstrip().endswith("x")
    for reference in ("HF GPT2LMHeadModel", "at the matmul peak", "HF generate", "ours, no cache"):
        assert reference in out
    code, _, err = run_cli(capsys, "bench", "backprop")
    assert code == 2 and "no benchmark" in err
