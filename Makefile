# Thin wrappers around ./setup.sh (which works without make on a fresh machine).
.PHONY: run test lint check bench screenshots
run:
	./setup.sh run
test:
	./setup.sh test
# ruff (style, imports, bug patterns), mypy on core/, import contracts (pyproject.toml)
lint:
	./setup.sh lint
# what to run before a commit: the linters, then the fast tier of the tests
check: lint test-fast
bench:
	./setup.sh test --co -q >/dev/null; for b in tests/benchmarks/bench_*.py; do .venv/bin/python $$b; done
