//! End-to-end test helpers (filled by the runtime-process issue).
