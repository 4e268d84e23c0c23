"""Every call to Kinde: the client, the token, the rate gate, what answers mean, the scopes."""
