//! Prometheus remote read: stub.
