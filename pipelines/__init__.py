"""Pure processing behind small protocols: RAG, LLM providers, speech. Never imports aiohttp or socketio."""
