"""Import a script of ``tools/analysis/`` as a module, so tests call its ``main(argv)`` in-process."""
import importlib.util

from ..conftest import REPO


def load_tool(name: str):
    spec = importlib.util.spec_from_file_location(f'analysis_{name}', REPO / 'tools/analysis' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
