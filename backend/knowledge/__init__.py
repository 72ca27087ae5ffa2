"""Knowledge base: resolved incidents and documents, indexed for hybrid retrieval."""
