"""Target capability profiles: built-in measured targets and profile files."""

from skvm.targets.profile import (
    TargetProfile,
    builtin_targets,
    load_profile_file,
    load_target,
    profile_from_dict,
    uniform_target,
    validate_profile,
)

__all__ = [
    "TargetProfile",
    "builtin_targets",
    "load_profile_file",
    "load_target",
    "profile_from_dict",
    "uniform_target",
    "validate_profile",
]
