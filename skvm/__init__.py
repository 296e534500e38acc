"""skvm: a compiler and virtual machine for LLM agent skills."""

__version__ = "0.1.0"
