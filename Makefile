# Thin wrappers around ./setup.sh (which works without make on a fresh machine).
.PHONY: run test bench screenshots
run:
	./setup.sh run
test:
	./setup.sh test
bench:
	./setup.sh test --co -q >/dev/null; for b in tests/benchmarks/bench_*.py; do .venv/bin/python $$b; done
