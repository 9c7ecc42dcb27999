//! Conformance suite: stores SPI.
