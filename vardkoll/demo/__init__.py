"""`vardkoll demo`: the product on its embedded default, on one machine."""
