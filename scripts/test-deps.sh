#!/bin/sh
# Installs the external programs that the integration tests of the push
# endpoints run (crates/api/tests/influx_cli.rs, crates/api/tests/otlp_python.rs).
# Run as root in CI before `cargo test`.
set -eu
if ! command -v influx >/dev/null 2>&1; then
    apt-get update
    apt-get install -y influxdb-client
fi
python3 -m pip install --quiet opentelemetry-sdk opentelemetry-exporter-otlp-proto-http
