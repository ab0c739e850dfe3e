"""The chaos soak (`make chaos`): faults at random under a paying register, then the checks."""
