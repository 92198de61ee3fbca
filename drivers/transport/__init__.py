"""drivers/transport."""
