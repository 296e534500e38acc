"""Tests of the SkIR core: nodes, text format, verifier."""
