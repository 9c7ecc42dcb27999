//! Group-commit figures.
