"""The turn engine: one intake for user messages, one producer for answers, one broadcaster."""
