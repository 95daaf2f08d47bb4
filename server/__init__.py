"""The central service. `metrics` holds the rules; `replay` re-computes figures from archives."""
