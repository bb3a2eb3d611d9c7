# Every target creates or reuses .venv and installs what it needs (versions pinned in constraints.txt;
# torch is the CPU build).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/otgen demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto

bench: $(STAMP)
	$(BIN)/python -m pytest -q -m slow
	$(BIN)/python benchmarks/egnot_gaussian.py --write BENCHMARKS.md
	$(BIN)/otgen bench eot-mixture --solver egnot --threads 2 --overwrite --json benchmarks/results/bench_eot_mixture.json --write BENCHMARKS.md
	$(BIN)/python -m pip install --quiet --no-deps torchcfm==1.0.7  # the sbcfm peer (its declared deps bring torchvision)
	$(BIN)/otgen bench eot-mixture --solver egnot_mixture --peers lightsb sbcfm --threads 1 --overwrite --json benchmarks/results/bench_eot_mixture_peers.json --write BENCHMARKS.md
	$(BIN)/otgen bench eot-gaussian --solver egnot_mixture --peers lightsb sbcfm --threads 1 --overwrite --json benchmarks/results/bench_eot_gaussian_peers.json --write BENCHMARKS.md
	$(BIN)/python benchmarks/langevin_exact_mixture.py > benchmarks/results/langevin_exact_mixture.md && cat benchmarks/results/langevin_exact_mixture.md
	$(BIN)/python benchmarks/langevin_exact_mixture.py --sweep > benchmarks/results/smc_sweep.md && cat benchmarks/results/smc_sweep.md
	$(BIN)/python benchmarks/langevin_exact_mixture.py --cells 64:0.1 64:1 --samplers smc > benchmarks/results/smc_exact_d64.md && cat benchmarks/results/smc_exact_d64.md
	$(BIN)/python benchmarks/compare_samplers.py
	$(BIN)/python benchmarks/uotm_outliers.py > benchmarks/results/uotm_outliers.md && cat benchmarks/results/uotm_outliers.md
	$(BIN)/otgen bench uot-gaussian --threads 1 --overwrite --json benchmarks/results/bench_uot_gaussian.json --write BENCHMARKS.md
	$(BIN)/otgen bench jko-gaussian --threads 1 --overwrite --json benchmarks/results/bench_jko_gaussian.json --write BENCHMARKS.md
	$(BIN)/python benchmarks/sjko_gaussian.py > benchmarks/results/sjko_gaussian.md && cat benchmarks/results/sjko_gaussian.md
	$(BIN)/python benchmarks/sjko_25gaussians.py > benchmarks/results/sjko_25gaussians.md && cat benchmarks/results/sjko_25gaussians.md
	$(BIN)/python benchmarks/wae_digits.py --threads 2
	$(BIN)/python benchmarks/egnot_digits.py --threads 2
	$(BIN)/python benchmarks/egnot_digits.py --threads 2 --eps --seeds 0 1 2 --name egnot_digits_latent_seeds
	$(BIN)/python benchmarks/wae_latent_sampler.py --threads 2
	$(BIN)/python benchmarks/generation_digits.py --threads 2
	$(BIN)/python benchmarks/uotm_outliers_digits.py --threads 2
	$(BIN)/python benchmarks/uotm_outliers_digits.py --threads 2 --kind far --total 4000
	$(BIN)/python benchmarks/ddp_scaling.py
	$(BIN)/python benchmarks/image_data.py --repeats 3 --throughput --json benchmarks/results/image_data.json
	$(BIN)/python benchmarks/evaluator_floors.py
	$(BIN)/python benchmarks/per_process_cost.py --test-configs
	$(BIN)/python benchmarks/per_process_cost.py
	$(BIN)/python benchmarks/host_syncs.py
	$(BIN)/python benchmarks/keyed_draws.py
	$(BIN)/python benchmarks/grad_overlap.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
