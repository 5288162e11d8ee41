"""Where the ops hand each other their small results: pickles named as such, not shown as the asset's path.

Dagster's ``FilesystemIOManager`` stores the asset's output (the ``Manifest``) at
``<base>/play_totals/<file key>`` (``.../demo.csv`` for ``demo.csv``) and adds that as a ``path``
entry to every materialization, so the UI shows a pickle, named like a CSV, as if it were the
result. Here the file ends in ``.pickle`` and no ``path`` entry is added: the materialization's
``result`` and ``shard ...`` entries name the real output.
"""

from typing import Any

from dagster import FilesystemIOManager, InitResourceContext, OutputContext
from dagster._core.storage.fs_io_manager import PickledObjectFilesystemIOManager


class _PickledStepOutputs(PickledObjectFilesystemIOManager):
    extension = ".pickle"

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        """As ``UPathIOManager.handle_output`` (one partition per run here), without the ``path`` metadata."""
        if context.has_asset_partitions:
            (path,) = self._get_paths_for_partitions(context).values()
        else:
            path = self._get_path(context)
        self.make_directory(path.parent)
        self.dump_to_path(context=context, obj=obj, path=path)


class StepOutputsIOManager(FilesystemIOManager):
    """``FilesystemIOManager`` (``base_dir``, default the instance's storage directory) with ``.pickle`` files
    and no ``path`` metadata on the asset."""

    def create_io_manager(self, context: InitResourceContext) -> PickledObjectFilesystemIOManager:
        base_dir = self.base_dir
        if not base_dir:
            assert context.instance is not None  # Dagster gives a run's resources its instance
            base_dir = context.instance.storage_directory()
        return _PickledStepOutputs(base_dir=base_dir)
