"""Retrieval-augmented generation: extract, chunk, embed, store and search documents."""
