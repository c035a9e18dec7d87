"""LLM layer: schema, prompts, backends behind one client protocol, cache, usage ledger, extraction.

Knows nothing about features or the model."""
