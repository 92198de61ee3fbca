"""The timing core: a pure state machine with an injected clock."""
