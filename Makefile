# Two commands for a fresh machine with Python 3.11: `make demo` and `make test`.
# Each creates .venv on first use and installs everything from requirements-train.txt.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean-venv

$(STAMP): requirements.txt requirements-train.txt
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required (rlbot 1.68 does not import on 3.12): set PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements-train.txt
	$(PY) -c "import rlbot.agents.base_agent, rlgym_compat, torch, RocketSim, subtr_actor, safetensors"
	touch $(STAMP)

# The bundled bot (bot.cfg, loaded as RLBotGUI loads it) against the ball-chasing baseline in the simulated
# arena; prints the score and writes top-down pictures and an animation to out/demo/.
demo: $(STAMP)
	$(PY) -m training evaluate --blue bot.cfg --orange baseline:chaser --games 2 --seconds 120 \
		--plot out/demo --json out/demo/results.json --gif out/demo/game.gif
	@echo "pictures: out/demo/game-000.png out/demo/game-001.png; animation: out/demo/game.gif"

test: $(STAMP)
	@$(PY) -m pytest -q || { rc=$$?; [ $$rc -eq 5 ] && echo "pytest collected no tests: failing"; exit $$rc; }

lint: $(STAMP)
	$(PY) -m ruff check bot training tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/bench_arena.py

clean-venv:
	rm -rf $(VENV)
