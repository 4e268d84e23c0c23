"""What a Kinde webhook says: the events we act on, and which keys may sign one."""
