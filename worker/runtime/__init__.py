"""How one message is fetched, run, retried and dead-lettered, and how stuck ones come back."""
