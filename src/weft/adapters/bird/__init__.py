"""Bird (MessageBird): the sender, the webhook parser and its signature checks, and the message history the
automation sync reads."""
