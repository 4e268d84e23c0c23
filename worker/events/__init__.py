"""What one webhook does: the handlers, and exactly-once effect per event."""
