"""The time engine: pure functions from a schedule and an instant to its ticks."""
