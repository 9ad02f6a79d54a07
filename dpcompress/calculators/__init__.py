"""Adapters for MD codes (ASE; i-PI through ASE's socket client)."""
