"""Officer review: what a bundle holds, who signed it, and what changed since its base (text, JSON, HTML)."""
