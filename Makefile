# The two set-up commands (README): `make serve` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: serve test lint clean

$(BIN)/mailstack: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,dev]'
	touch $@

# The openspf RFC 7208 test suite ships in pyspf's sources: test data only.
SPF_SUITE := $(HOME)/.cache/mailstack-test/pyspf-2.0.14.tar.gz
$(SPF_SUITE): $(BIN)/mailstack
	$(BIN)/pip download --quiet --no-deps --no-binary :all: pyspf==2.0.14 -d $(dir $@)

# Start mailstack with its embedded defaults (SQLite, unprivileged ports on 127.0.0.1).
serve: $(BIN)/mailstack
	$(BIN)/mailstack serve $(ARGS)

# Run the whole test suite.
test: $(BIN)/mailstack $(SPF_SUITE)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(BIN)/mailstack
	$(BIN)/ruff check src tests bench bench/*/run
	$(BIN)/mypy src

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
