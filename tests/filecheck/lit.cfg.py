# lit configuration for skvm's FileCheck tests. Each test is a .skir (or .md)
# file whose RUN lines call the skvm tools and pipe into `filecheck`.
import os
import sys

import lit.formats

config.name = "skvm"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".skir", ".test"]
config.test_source_root = os.path.dirname(__file__)
config.excludes = ["Inputs", "lit.cfg.py"]

bin_dir = os.path.dirname(sys.executable)
config.environment["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
for name in ("HOME", "TMPDIR", "LANG", "LC_ALL", "PYTHONDONTWRITEBYTECODE"):
    if name in os.environ:
        config.environment[name] = os.environ[name]
config.environment["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
repo_root = os.path.dirname(os.path.dirname(config.test_source_root))
config.substitutions.append(("%corpus", os.path.join(repo_root, "..", "shared", "corpus")))
config.substitutions.append(("%fixtures", os.path.join(repo_root, "tests", "fixtures")))
config.substitutions.append(("%inputs", os.path.join(config.test_source_root, "Inputs")))
