//! Deployment state, write-ahead log and deploy lock.
