"""Who a billing customer is: resolve, the index rebuild, parking, on-call's customer state."""
