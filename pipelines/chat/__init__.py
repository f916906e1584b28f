"""One chat turn: the user's message in, the assistant's streamed and stored answer out."""
