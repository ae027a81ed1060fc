#!/bin/sh
# Nutshell set-up for a fresh Debian/Ubuntu machine, as root.
#   ./setup.sh run            install what is needed, make the offline default image, open the app
#   ./setup.sh test [ARGS]    install what is needed and run the test suite (pytest ARGS)
#   ./setup.sh lint           install what is needed and run the linters (ruff, mypy, import contracts)
set -eu
cd "$(dirname "$0")"

APT_PACKAGES="python3 python3-venv busybox-static skopeo umoci docker-registry nftables iproute2 \
tmux apache2-utils curl psmisc file pigz strace iptables docker.io docker-compose podman runc \
squashfs-tools"

missing=""
for p in $APT_PACKAGES; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "setup: installing$missing" >&2
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing
fi

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ] || [ ! -f .venv/.stamp ] || [ pyproject.toml -nt .venv/.stamp ]; then
    "$PY" -m venv .venv
    .venv/bin/pip install -q --upgrade pip >/dev/null 2>&1 || true
    .venv/bin/pip install -q -e '.[test,lint]' --config-settings editable_mode=compat
    # Python 3.11's venv ships setuptools, whose distutils-precedence.pth imports
    # _distutils_hack in every interpreter start (~0.7 ms of each `nutshell` command);
    # nothing here needs it at run time (pip builds in an isolated environment), and
    # Python 3.12's venvs no longer include it
    .venv/bin/pip uninstall -q -y setuptools >/dev/null 2>&1 || true
    touch .venv/.stamp
fi
# this environment may set PYTHONDONTWRITEBYTECODE: compile once so every command starts fast
.venv/bin/python -m compileall -q -j 0 core workbench >/dev/null 2>&1 || true

cmd="${1:-run}"
[ $# -gt 0 ] && shift
case "$cmd" in
    run)
        .venv/bin/python -m workbench.default_image
        exec .venv/bin/nutshell "$@"
        ;;
    test)
        exec .venv/bin/python -m pytest "$@"
        ;;
    lint)
        # the rules docs/architecture.md lists, each checked by a tool
        .venv/bin/ruff check .
        .venv/bin/mypy core workbench/api
        .venv/bin/lint-imports
        ;;
    *)
        echo "usage: $0 run | test [pytest args] | lint" >&2
        exit 2
        ;;
esac
