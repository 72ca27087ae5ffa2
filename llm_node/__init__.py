"""The local LLM node (`prs llm serve`): a small Ollama-compatible server over llama.cpp.

Import `llm_node.server.serve` to run one; this package import stays light so the
CLI does not load llama.cpp for unrelated commands.
"""
