"""The benchmark harness and `otgen bench`: one scoring code for solvers, floors and baselines."""

import dataclasses
import json
import math

import pytest
import torch

from otgen import bench
from otgen.cli import main
from otgen.train import TrainingDiverged

TINY = bench.EvalBudget(n_iters=1, batch_size=8, n_conditions=8, n_per_condition=20, n_marginal=200,
                        n_sinkhorn=100)


def _exact_solver(pair, cell, budget, seed):
    """A 'solver' that returns the pair's exact sampler: it must score like the floor."""

    class Exact:
        def sample(self, x, k):
            return pair.conditional_sample(x, k, generator=torch.Generator().manual_seed(99))

    return Exact()


def test_suite_cells():
    full = bench.suite_cells("eot")
    assert len(full) == 2 * 4 * 3
    assert {c.dim for c in full} == {2, 16, 64, 128} and {c.eps for c in full} == {0.1, 1.0, 10.0}
    quick = bench.suite_cells("eot-mixture", quick=True)
    assert [(c.family, c.dim, c.eps) for c in quick] == [("mixture", 2, 0.1), ("mixture", 2, 1.0)]
    with pytest.raises(ValueError, match="suite must be one of"):
        bench.suite_cells("nope")


def test_run_cell_scores_every_method_with_the_same_code(monkeypatch):
    monkeypatch.setitem(bench.EOT_SOLVERS, "exact_solver", _exact_solver)
    r = bench.run_cell(bench.Cell("mixture", 2, 1.0), "exact_solver", TINY)
    assert list(r["methods"]) == ["exact_solver", "exact", "independent", "conditional_mean", "constant", "sinkhorn"]
    for name, s in r["methods"].items():
        assert set(s) >= {"cbw2_uvp", "loglik_gap", "weight_tv", "bw2_uvp", "train_seconds"}, name
        assert all(math.isfinite(s[k]) for k in ("cbw2_uvp", "loglik_gap", "weight_tv", "bw2_uvp"))
    m = r["methods"]
    assert m["constant"]["bw2_uvp"] == pytest.approx(100.0, abs=1e-6)  # E[y] exactly: the UVP normaliser
    assert m["exact_solver"]["cbw2_uvp"] < m["conditional_mean"]["cbw2_uvp"] < m["constant"]["cbw2_uvp"]
    gaussian = bench.run_cell(bench.Cell("gaussian", 2, 1.0), None, TINY)
    assert "weight_tv" not in gaussian["methods"]["exact"]  # a Gaussian plan has no mixture weights


def test_failed_training_and_non_finite_draws_are_recorded_not_raised(monkeypatch):
    def diverges(pair, cell, budget, seed):
        raise TrainingDiverged("loss is nan at step 3")

    def nan_sampler(pair, cell, budget, seed):
        class Broken:
            def sample(self, x, k):
                return torch.full((x.shape[0], k, x.shape[1]), float("nan"))

        return Broken()

    for fn, word in ((diverges, "training failed"), (nan_sampler, "scoring failed")):
        monkeypatch.setitem(bench.EOT_SOLVERS, "bad", fn)
        r = bench.run_cell(bench.Cell("mixture", 2, 1.0), "bad", TINY)
        assert r["methods"]["bad"]["error"].startswith(word)
        assert math.isfinite(r["methods"]["sinkhorn"]["cbw2_uvp"])  # the baselines are still scored
        assert word in bench.format_table([r])
        assert "| **failed** |" in bench.markdown_section([r], bench.machine_meta(), "cmd")


def test_replace_section_keeps_the_rest_of_the_file():
    text = "intro\n<!-- bench-x:begin -->\nold\n<!-- bench-x:end -->\noutro\n"
    new = bench.replace_section(text, "bench-x", "NEW")
    assert new.startswith("intro\n") and new.endswith("outro\n") and "NEW" in new and "old" not in new
    appended = bench.replace_section("intro\n", "bench-y", "B")
    assert appended.startswith("intro\n") and "<!-- bench-y:begin -->" in appended


def test_cli_rejects_bad_suite_and_solver(capsys):
    assert main(["bench", "nope"]) == 2
    assert "suite must be one of" in capsys.readouterr().err
    assert main(["bench", "eot", "--solver", "nope"]) == 2
    assert "--solver must be one of" in capsys.readouterr().err


def test_iters_and_cells_select_the_budget_and_cells_and_are_recorded(monkeypatch, tmp_path, capsys):
    seen = []

    def counting(pair, cell, budget, seed):
        seen.append(budget.n_iters)
        return _exact_solver(pair, cell, budget, seed)

    monkeypatch.setitem(bench.EOT_SOLVERS, "counting", counting)
    monkeypatch.setitem(bench.SUITES, "eot-mixture", dataclasses.replace(bench.SUITES["eot-mixture"],
                                                                        budget=lambda quick: TINY))
    out = tmp_path / "r.json"
    assert main(["bench", "eot-mixture", "--quick", "--solver", "counting", "--iters", "7", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert seen == [7, 7] and [c["budget"]["n_iters"] for c in data["cells"]] == [7, 7]
    assert "--iters 7" in data["command"]
    assert main(["bench", "eot-mixture", "--quick", "--solver", "counting", "--cells", "mixture D=2 eps=1", "--overwrite",
                 "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert [(c["dim"], c["eps"]) for c in data["cells"]] == [(2, 1.0)]
    assert "--cells 'mixture D=2 eps=1'" in data["command"]
    assert main(["bench", "eot-mixture", "--cells", "mixture D=2 eps=1", "--write", str(tmp_path / "B.md")]) == 2
    assert "--cells with --write would replace" in capsys.readouterr().err
    assert main(["bench", "eot-mixture", "--from-json", str(out), "--iters", "5"]) == 2
    assert "--from-json runs nothing" in capsys.readouterr().err
    assert main(["bench", "eot-mixture", "--cells", "mixture D=2 eps=0.5"]) == 2
    err = capsys.readouterr().err
    assert "--cells 'mixture D=2 eps=0.5' is not a cell of suite 'eot-mixture'" in err and "mixture D=128 eps=10" in err
    for bad in ("0", "-3"):
        assert main(["bench", "eot-mixture", "--iters", bad]) == 2
        assert f"--iters must be >= 1 (training iterations per cell), got {bad}" in capsys.readouterr().err
    with pytest.raises(ValueError, match="n_iters must be an int >= 1, got 2.5"):
        bench.run_suite("eot-mixture", "counting", quick=True, n_iters=2.5)


def test_quick_suite_end_to_end(tmp_path, capsys):
    """`otgen bench eot --quick` (4 cells, EgNOT for 200 iterations each): one table, JSON results,
    regenerated Markdown tables; EgNOT and every baseline land where the ground truth says."""
    out, md = tmp_path / "r.json", tmp_path / "B.md"
    md.write_text("# Benchmarks\n\nkept text\n")
    assert main(["bench", "eot", "--quick", "--json", str(out), "--write", str(md)]) == 0
    text = capsys.readouterr().out
    assert "cBW2-UVP %" in text and "sinkhorn" in text and "egnot" in text
    data = json.loads(out.read_text())
    assert len(data["cells"]) == 4 and data["meta"]["threads"] >= 1
    for r in data["cells"]:
        m = r["methods"]
        assert "error" not in m["egnot"]
        floor = m["exact"]["cbw2_uvp"]
        assert floor < 0.5  # 20 conditions x 100 draws at D = 2
        for name in ("conditional_mean", "independent", "constant", "sinkhorn", "egnot"):
            assert m[name]["cbw2_uvp"] > floor, name
        assert m["constant"]["bw2_uvp"] == pytest.approx(100, abs=1e-6)  # E[y] exactly: the UVP normaliser
        # even 200 iterations beat ignoring x, and the Sinkhorn plan beats the trivial predictors
        assert m["egnot"]["cbw2_uvp"] < min(m["independent"]["cbw2_uvp"], m["constant"]["cbw2_uvp"])
        assert m["sinkhorn"]["cbw2_uvp"] < min(m["independent"]["cbw2_uvp"], m["constant"]["cbw2_uvp"])
        assert abs(m["exact"]["loglik_gap"]) < 0.1
        assert m["egnot"]["train_seconds"] > 0
    written = md.read_text()
    assert written.startswith("# Benchmarks\n\nkept text\n") and "<!-- bench-eot:begin -->" in written
    assert "**cBW2-UVP %**" in written and "**w TV**" in written
    # the tables can be regenerated from the saved results without running anything
    md2 = tmp_path / "C.md"
    assert main(["bench", "eot", "--from-json", str(out), "--write", str(md2)]) == 0
    assert md2.read_text().split("<!-- bench-eot:begin -->")[1] == written.split("<!-- bench-eot:begin -->")[1]
    assert main(["bench", "eot-mixture", "--from-json", str(out)]) == 2  # results of another suite
    assert "not 'eot-mixture'" in capsys.readouterr().err


def test_uot_gaussian_quick_suite_scores_uotm_against_both_closed_forms(tmp_path, capsys):
    """`otgen bench uot-gaussian --quick` (D = 2, KL and linear, 300 iterations each): the exact map
    scores 0 by construction, the two problems' exact maps are far apart, and UOTM lands within a few
    percent of its own problem's map (measured 0.44 % and 0.33 %), far below the mean shift (31 %, 82 %)."""
    out, md = tmp_path / "u.json", tmp_path / "B.md"
    assert main(["bench", "uot-gaussian", "--quick", "--json", str(out), "--write", str(md)]) == 0
    assert "L2-UVP % vs the exact map" in capsys.readouterr().out
    cells = json.loads(out.read_text())["cells"]
    assert [(c["dim"], c["phi"]) for c in cells] == [(2, "kl"), (2, "linear")]
    for c in cells:
        m = c["methods"]
        assert m["exact"]["l2_uvp"] == 0.0 and m["exact"]["bw2_uvp"] < 0.2  # T*#mu from 2000 draws
        assert m["other_exact"]["l2_uvp"] > 20.0
        assert m["uotm"]["l2_uvp"] < min(5.0, m["mean_shift"]["l2_uvp"] / 10) and m["uotm"]["bw2_uvp"] < 1.0
        assert m["mean_shift"]["l2_uvp"] < m["identity"]["l2_uvp"]
    assert "<!-- bench-uot-gaussian:begin -->" in md.read_text() and "| D | phi | uotm |" in md.read_text()


def test_jko_gaussian_quick_suite_scores_every_phase_against_the_exact_recursion(tmp_path):
    """`otgen bench jko-gaussian --quick` (D = 2, phases of 300/150/150 steps): S-JKO's every phase is
    far closer to the exact iterate than staying at mu_0 or jumping to nu (measured 6.5 / 2.4 / 0.28 %
    against at least 123 %), and exact samples sit at the floor."""
    out = tmp_path / "j.json"
    assert main(["bench", "jko-gaussian", "--quick", "--json", str(out)]) == 0
    (cell,) = json.loads(out.read_text())["cells"]
    m = cell["methods"]
    assert len(m["sjko"]["bw2_uvp_phases"]) == 3 and m["exact"]["bw2_uvp_max"] < 0.5
    for k, err in enumerate(m["sjko"]["bw2_uvp_phases"]):
        assert err < min(m["stay"]["bw2_uvp_phases"][k], m["target"]["bw2_uvp_phases"][k]) / 10, k
    assert m["sjko"]["bw2_uvp_phases"][-1] < 2.0


def test_each_suite_names_the_solvers_it_can_train(capsys):
    assert bench.check_solver("uot-gaussian", "default") == "uotm" and bench.check_solver("eot", "none") is None
    assert main(["bench", "jko-gaussian", "--solver", "egnot"]) == 2
    assert "--solver must be one of ['sjko', 'none'] for suite 'jko-gaussian'" in capsys.readouterr().err


def test_peers_are_trained_and_scored_beside_the_solver(tmp_path):
    """``--peers lightsb``: LightSB as published (otgen's mixture potential with the official settings)
    gets its own column, train and score seconds; unknown peers and peers of map suites are refused."""
    budget = dataclasses.replace(TINY, peer_iters=300, peer_batch=128, n_per_condition=100)
    r = bench.run_cell(bench.Cell("mixture", 2, 1.0), None, budget, peers=["LightSB"])
    assert list(r["methods"])[0] == "lightsb"
    s = r["methods"]["lightsb"]
    assert "error" not in s and s["train_seconds"] > 0 and s["eval_seconds"] >= 0
    # 300 exact steps already beat the predictors that ignore the plan's modes
    assert s["cbw2_uvp"] < r["methods"]["conditional_mean"]["cbw2_uvp"]
    md = bench.markdown_section([{"kind": "eot", **r}], bench.machine_meta(1), "otgen bench eot-mixture --peers lightsb")
    assert "| LightSB | floor (exact) |" in md and "**seconds: train / score**" in md
    with pytest.raises(ValueError, match="did you mean 'lightsb'"):
        bench.run_cell(bench.Cell("mixture", 2, 1.0), None, budget, peers=["lightsbb"])
    with pytest.raises(ValueError, match="has no peers"):
        bench.run_suite("uot-gaussian", quick=True, peers=["lightsb"])
    assert bench.bench_peers.lightsb_lr(0.1) == pytest.approx(1e-3) and bench.bench_peers.lightsb_lr(10) == 6e-2
    assert bench.bench_peers.lightsb_lr(1e-3) == pytest.approx(1e-3) and 1e-3 < bench.bench_peers.lightsb_lr(0.3) < 3e-3


def test_the_sbcfm_peer_trains_where_torchcfm_imports():
    pytest.importorskip("torchcfm")
    budget = dataclasses.replace(TINY, peer_iters=30, peer_batch=64)
    r = bench.run_cell(bench.Cell("gaussian", 2, 1.0), None, budget, peers=["sbcfm"])
    s = r["methods"]["sbcfm"]
    assert "error" not in s and math.isfinite(s["cbw2_uvp"]) and s["train_seconds"] > 0


def test_the_mixture_solver_writes_its_own_section(tmp_path, capsys):
    """`--solver egnot_mixture --quick --iters 1000`: EgNOT with the mixture potential (1000 exact steps;
    the grid's 10 000 reach the floor) beats the predictors that ignore x in both quick cells and the
    conditional mean at eps = 1 (at eps = 0.1 LightSB's lr of 1e-3 needs more steps), and its tables go
    to a section of their own, so the neural EgNOT's tables of the same suite stay."""
    md = tmp_path / "B.md"
    md.write_text("<!-- bench-eot-mixture:begin -->\nneural tables\n<!-- bench-eot-mixture:end -->\n")
    out = tmp_path / "r.json"
    assert main(["bench", "eot-mixture", "--quick", "--solver", "egnot_mixture", "--iters", "1000", "--json",
                 str(out), "--write", str(md)]) == 0
    text = md.read_text()
    assert "neural tables" in text and "<!-- bench-eot-mixture-egnot_mixture:begin -->" in text
    for r in json.loads(out.read_text())["cells"]:
        m = r["methods"]
        assert m["egnot_mixture"]["cbw2_uvp"] < min(m["independent"]["cbw2_uvp"], m["constant"]["cbw2_uvp"])
        if r["eps"] == 1.0:
            assert m["egnot_mixture"]["cbw2_uvp"] < m["conditional_mean"]["cbw2_uvp"]
    md2 = tmp_path / "C.md"
    assert main(["bench", "eot-mixture", "--from-json", str(out), "--write", str(md2)]) == 0
    assert "<!-- bench-eot-mixture-egnot_mixture:begin -->" in md2.read_text()
