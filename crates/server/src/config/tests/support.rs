//! Temporary config directories and a fake environment.
