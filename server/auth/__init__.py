"""API tokens: who a request is from (its tenant), and how often it may ask."""
