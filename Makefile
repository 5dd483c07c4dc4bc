# rlcourse: `make lab` opens the course, `make test` checks all of it.
# Both create .venv on first use; nothing needs to be installed beforehand but Python >= 3.10.

PYTHON      ?= python3
VENV        ?= .venv
PY          := $(VENV)/bin/python
CONSTRAINTS := requirements/constraints.txt
# Torch goes in first and pinned, so no other package can pull a different (multi-GB) build.
# Elsewhere this resolves to the normal PyPI wheel; pass TORCH_SPEC=... to choose another.
TORCH_SPEC  ?= torch==2.13.0
# Exact versions from the lock; `make test-latest` empties this to test the newest releases.
LOCK_ARGS   ?= -c $(CONSTRAINTS)
# Jupyter refuses to run as root unless asked (containers often run as root).
LAB_ARGS    ?= $(if $(filter 0,$(shell id -u)),--allow-root)
WORKERS     ?= 2
CELL_TIMEOUT ?= 600

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: install install-extras lab test lint unit notebooks build-notebooks readme bench compare \
        lab-bench ppo-sweep lock test-latest clean

# ---- environment -------------------------------------------------------------------------
$(VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(LOCK_ARGS) "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet --upgrade-strategy only-if-needed $(LOCK_ARGS) -e ".[dev]"
	@touch $@

install: $(VENV)/.installed

# The optional extras: TRL (notebook 14's library section) and MuJoCo (a MuJoCo task in the
# continuous-control benchmark and its tests); `make test` runs with both.
$(VENV)/.installed-extras: $(VENV)/.installed
	$(PY) -m pip install --quiet --upgrade-strategy only-if-needed $(LOCK_ARGS) \
	    -e ".[dev,trl,mujoco]"
	@touch $@

install-extras: $(VENV)/.installed-extras

# ---- the course ----------------------------------------------------------------------------
lab: install
	$(VENV)/bin/jupyter lab notebooks/index.ipynb $(LAB_ARGS)

# ---- checks --------------------------------------------------------------------------------
test: install install-extras lint unit notebooks
	@echo "make test: all checks passed"

lint: install
	$(PY) -m ruff check .

unit: install
	MPLBACKEND=Agg $(PY) -m pytest tests -n $(WORKERS) --dist loadscope \
	    --cov=rlcourse --cov-report=term --cov-fail-under=90

# Learner notebooks (exercises blank) and solution notebooks, executed for real. The lab's
# cached SFT model and reward model are built first, so notebooks 10-11 start from them (as
# learners do after notebook 09) and their times in the README measure the notebook itself.
notebooks: install
	@mkdir -p results/notebooks
	$(PY) -m rlcourse.llm.lab --warm-cache --no-progress
	RLCOURSE_RESULTS=$(CURDIR)/results/notebooks $(PY) -m pytest -p no:cacheprovider \
	    --nbval-lax --nbval-current-env --nbval-cell-timeout=$(CELL_TIMEOUT) \
	    -n $(WORKERS) --dist loadscope notebooks/*.ipynb notebooks/solutions/*.ipynb

# ---- maintenance ---------------------------------------------------------------------------
# Regenerate notebooks/*.ipynb and notebooks/solutions/*.ipynb from notebooks/src/*.py.
build-notebooks: install
	$(PY) -m rlcourse.build

# Rewrite the README's tables from results/notebooks/ (written by `make notebooks`),
# results/bench/ (written by `make bench`) and results/lab/lab.json (`make lab-bench`).
readme: install
	$(PY) -m rlcourse.results --update-readme README.md

# The README's benchmark table: 10 seeds per run (about 30 minutes on 2 cores). A run is
# ALGO:ENV or ALGO:ENV:K, where K stores each seed's training curve every K env steps
# (notebook 17 plots the Pendulum-v1 curves). The MuJoCo task needs the [mujoco] extra.
BENCH_RUNS := dqn:CartPole-v1 reinforce:CartPole-v1 a2c:CartPole-v1 ppo:CartPole-v1 \
              ppo:Acrobot-v1 sac:Pendulum-v1:1000 ppo:Pendulum-v1:5000 \
              ppo:InvertedPendulum-v5:5000
bench: install install-extras
	@mkdir -p results/bench
	@for run in $(BENCH_RUNS); do algo=$${run%%:*}; rest=$${run#*:}; env=$${rest%%:*}; \
	    curve=$$( [ "$$rest" != "$$env" ] && echo "--curve-every $${rest#*:}" ); \
	    echo "bench $$algo $$env $$curve"; \
	    $(PY) -m rlcourse.bench $$algo --env $$env --seeds 10 $$curve --json \
	        > results/bench/$$algo-$$env.json.tmp || exit 1; \
	    mv results/bench/$$algo-$$env.json.tmp results/bench/$$algo-$$env.json; done

# Notebook 07's comparison of DQN, REINFORCE, A2C and PPO: learning curves over 5 seeds each
# (env steps, wall-clock and CPU seconds per episode end; several CPU minutes).
compare: install
	@mkdir -p results/compare
	$(PY) -m rlcourse.compare --env CartPole-v1 --seeds 5 --out results/compare/CartPole-v1.json

# The README's lab and head-to-head tables: the whole tiny-GPT pipeline from scratch
# (python -m rlcourse.llm.lab), 3 seeds.
LAB_STAGES ?= all
lab-bench: install
	@mkdir -p results/lab
	$(PY) -m rlcourse.llm.lab --stages $(LAB_STAGES) --seeds 3 --compare --json \
	    > results/lab/lab.json.tmp
	mv results/lab/lab.json.tmp results/lab/lab.json

# Notebook 07's stored experiments (10-seed learning-rate sweep and time-to-solve ablation).
# Re-run whenever PPO's defaults or training code change; notebook 07 reads results/ppo/.
ppo-sweep: install
	@mkdir -p results/ppo
	@for kind in lr solve; do name=$$( [ $$kind = lr ] && echo lr_sweep || echo ablation_solve ); \
	    echo "ppo_sweep $$kind"; \
	    $(PY) -m rlcourse.ppo_sweep $$kind --seeds 10 > results/ppo/$$name.json.tmp || exit 1; \
	    mv results/ppo/$$name.json.tmp results/ppo/$$name.json; done

# Re-pin every package to the newest compatible versions (needs the network).
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet "$(TORCH_SPEC)"
	.venv-lock/bin/pip install --quiet -e ".[dev,trl,mujoco]"
	.venv-lock/bin/python tools/write_constraints.py .venv-lock > $(CONSTRAINTS)
	rm -rf .venv-lock

# What the weekly CI job runs: newest versions within pyproject's ranges, no lock.
test-latest:
	rm -rf .venv-latest
	$(MAKE) test VENV=.venv-latest LOCK_ARGS= TORCH_SPEC="torch>=2.4,<2.14"

clean:
	rm -rf $(VENV) .pytest_cache .coverage results/*/*.tmp
