"""Speech: streaming speech-to-text with partial transcripts, and text-to-speech."""
