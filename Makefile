# Thin wrappers around ./setup.sh (which works without make on a fresh machine).
.PHONY: run test test-fast lint check bench screenshots
run:
	./setup.sh run
test:
	./setup.sh test
# unit tests and the Textual tests against fakes: no root, no containers, under 2 minutes
# on 2 cores (the Pilot tests mostly wait, so 4 workers)
test-fast:
	./setup.sh test -q -p xdist -n 4 -m "not integration and not slow and not e2e and not registry and not bench" tests/unit tests/tui
# ruff (style, imports, bug patterns), mypy on core/ and workbench/api/, import contracts (pyproject.toml)
lint:
	./setup.sh lint
# what to run before a commit: the linters, then the fast tier of the tests
check: lint test-fast
bench:
	./setup.sh test --co -q >/dev/null; for b in tests/benchmarks/bench_*.py; do .venv/bin/python $$b; done
