//! Real PostgreSQL servers behind emulated database instances.
