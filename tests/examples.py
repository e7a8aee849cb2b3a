"""Loading the apps under examples/ (not a package) as modules, once per test run."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

EXAMPLES = Path(__file__).parents[1] / "examples"


def load_example(relative: str, name: str) -> ModuleType:
    """``examples/<relative>`` as the module ``name``, registered in ``sys.modules``.

    Frameworks resolve through ``sys.modules[__name__]`` (Flask its templates, pydantic
    FastAPI's annotations), so the module must be registered before it runs.
    """
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, EXAMPLES / relative)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def readme_python(heading: str) -> str:
    """The first Python block of the README section ``heading`` (e.g. ``"### Async (FastAPI)"``)."""
    readme = (EXAMPLES.parent / "README.md").read_text()
    section = readme[readme.index(heading) :]
    return section[section.index("```python\n") + 10 : section.index("\n```\n")]
