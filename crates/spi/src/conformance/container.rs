//! Conformance suite: container SPI.
