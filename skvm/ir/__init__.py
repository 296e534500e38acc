"""SkIR: the typed, printable intermediate representation of skills.

Importing any ``skvm.ir`` module registers every dialect's ops, so
``Op.build`` always finds the registered class.
"""

import skvm.ir.dialects  # noqa: F401
