"""Data keys for envelope encryption: where they come from, how they rotate, how to unwrap them."""
