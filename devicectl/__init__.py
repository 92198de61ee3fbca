"""devicectl."""
