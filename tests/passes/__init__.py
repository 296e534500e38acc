"""Tests of the pass infrastructure and passes."""
