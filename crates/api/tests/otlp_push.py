"""Pushes a counter and a histogram with the OpenTelemetry Python SDK and its
OTLP/HTTP (protobuf) exporter to the endpoint given as the first argument.

Used by crates/api/tests/otlp_python.rs. Needs the PyPI packages
`opentelemetry-sdk` and `opentelemetry-exporter-otlp-proto-http`
(see scripts/install-test-deps).
"""
import sys

try:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
except ImportError as e:
    print(f"MISSING-PACKAGES: {e}; run: pip install opentelemetry-sdk opentelemetry-exporter-otlp-proto-http")
    sys.exit(3)

endpoint = sys.argv[1]
exporter = OTLPMetricExporter(endpoint=endpoint)
reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
resource = Resource.create(
    {"service.name": "checkout", "service.instance.id": "inst-1", "deployment.environment": "test"}
)
provider = MeterProvider(resource=resource, metric_readers=[reader])
meter = provider.get_meter("haetae.test", "0.1")

requests = meter.create_counter("test.requests", unit="{request}", description="Requests handled.")
requests.add(3, {"route": "/a"})
requests.add(4, {"route": "/a"})
requests.add(1, {"route": "/b"})

duration = meter.create_histogram("test.duration", unit="ms", description="Request durations.")
for v in [3, 7, 30, 700]:
    duration.record(v, {"route": "/a"})

ok = provider.force_flush(timeout_millis=10_000)
provider.shutdown()
print("flushed" if ok else "flush failed")
sys.exit(0 if ok else 1)
