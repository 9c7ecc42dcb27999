//! Conformance suite: messaging SPI.
