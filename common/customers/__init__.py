"""Who a billing customer is, in Redis: links, the payer rule, the timeline."""
