"""State: the local backend, atomic writes and locking."""
