//! Tests of the configuration layer, with temporary files and a fake environment.

mod support;
