#!/bin/sh
# Put promtool in the virtualenv's bin directory ($1, e.g. .venv/bin) unless one is already on PATH or there.
# tests/deploy/test_observability.py runs it on deploy/observability/prometheus.yml and on the dashboards' PromQL;
# without it those checks skip. It comes from Debian's `prometheus` package, unpacked with dpkg-deb: only the
# promtool binary is kept, nothing is installed system-wide and no Prometheus service is set up. `apt-get download`
# needs no root; as root, the package lists are refreshed first when the download fails. Never fails the build.
set -u
bin="$1"
command -v promtool >/dev/null 2>&1 && exit 0
[ -x "$bin/promtool" ] && exit 0
skip() {
    echo "promtool not available ($1): the promtool checks in tests/deploy/test_observability.py will be skipped"
    exit 0
}
command -v apt-get >/dev/null 2>&1 && command -v dpkg-deb >/dev/null 2>&1 || skip "no apt-get/dpkg-deb"
work=$(mktemp -d) || skip "no temporary directory"
trap 'rm -rf "$work"' EXIT
cd "$work" || skip "no temporary directory"
if ! apt-get download -qq prometheus >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || skip "apt-get download prometheus failed; as root, apt-get update first"
    apt-get update -qq >/dev/null 2>&1 && apt-get download -qq prometheus >/dev/null 2>&1 || skip "no prometheus package"
fi
cd - >/dev/null || exit 0
dpkg-deb --fsys-tarfile "$work"/prometheus_*.deb | tar -xO ./usr/bin/promtool >"$bin/promtool.partial" &&
    chmod +x "$bin/promtool.partial" && "$bin/promtool.partial" --version >/dev/null 2>&1 &&
    mv "$bin/promtool.partial" "$bin/promtool" || { rm -f "$bin/promtool.partial"; skip "could not unpack it"; }
echo "installed $("$bin/promtool" --version 2>&1 | head -1) into $bin"
