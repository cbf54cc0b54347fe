"""A local file backend whose writes are atomic, so a kill while a checkpoint is written never leaves
a truncated file behind: the bytes go to a temporary sibling, are flushed to disk, then renamed.

Selected with ``backend_args=dict(backend='atomic_local')`` on mmengine's ``CheckpointHook``.
"""
import os
import tempfile

from mmengine.fileio import LocalBackend, register_backend


def write_atomic(data: bytes, filepath) -> None:
    """Write ``data`` to ``filepath`` so that readers see the old file or the complete new one."""
    filepath = os.fspath(filepath)
    folder = os.path.dirname(filepath) or '.'
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.tmp_', suffix=os.path.basename(filepath))
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filepath)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


class AtomicLocalBackend(LocalBackend):
    """mmengine's ``LocalBackend`` with atomic ``put`` / ``put_text``."""

    def put(self, obj: bytes, filepath) -> None:
        write_atomic(obj, filepath)

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        write_atomic(obj.encode(encoding), filepath)


register_backend('atomic_local', AtomicLocalBackend, force=True)
