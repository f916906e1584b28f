"""Hostile input (issue 8): fuzzers, an authorization matrix, JWT attacks, oversized and malformed input, leaks."""
