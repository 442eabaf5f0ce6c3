"""Running plans: point-in-time scans, continuous operators, state and checkpoints."""
