"""The job's executor: dagster-dask's, on the cluster that the settings name.

``dagster_dask.DaskExecutor.execute`` is replaced, with everything else (step
execution on the worker as ``query_on_dask_worker`` does it, resource requirements, local
cluster options) taken from dagster-dask, because:

- it hands the run to ``Client.submit`` as a bare argument; Dask walks tuples to find futures,
  and a partitioned run holds a Dagster record that refuses iteration, so every partitioned run
  failed before its first step. Here the step's arguments travel in one plain object;
- its Dask task keys are ``<job>.<step>``, the same for every run, so two runs of the job on one
  shared cluster would get each other's results. Here each key carries the run id;
- it runs a step even when a step it depends on failed, which then fails again on its missing
  input. Here such a step is skipped, as Dagster's own executors do;
- it disables step retries. Here a step's ``RetryPolicy`` applies, on the worker that runs it;
- it waits for every step a step depends on, so a re-execution that starts after a step done by
  the parent run (from failure, or from a selected step) failed with a ``KeyError``. Here a
  step waits only for the steps of this plan; the parent's outputs come through the IO manager.

It also tags the run with the process executing it, so that the run launcher can tell when that
process is gone (``csv_pipeline.defs.run_launcher``).

And a worker opens the run's instance once, not once per step, with its database connections
pooled (``open_instance``); in a run worker forked by the fork server, the steps share the
run's own.
"""

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import dask.config
from dagster import (
    DagsterEvent,
    ExecutorDefinition,
    Field,
    InitExecutorContext,
    Permissive,
    Selector,
    StringSource,
    executor,
    multiple_process_executor_requirements,
)
from dagster._core.definitions.reconstruct import ReconstructableJob
from dagster._core.errors import raise_execution_interrupts
from dagster._core.execution.api import create_execution_plan, execute_plan
from dagster._core.execution.context.system import PlanOrchestrationContext
from dagster._core.execution.plan.plan import ExecutionPlan
from dagster._core.execution.plan.state import KnownExecutionState
from dagster._core.execution.retries import RetryMode
from dagster._core.instance.ref import InstanceRef
from dagster._core.storage.dagster_run import DagsterRun
from dagster._serdes import serialize_value
from dagster._utils import iterate_with_context
from dagster_dask.executor import DaskExecutor, get_dask_resource_requirements
from distributed import Client, LocalCluster, as_completed

from csv_pipeline.defs.pooled_instance import open_instance
from csv_pipeline.defs.run_launcher import record_run_worker
from csv_pipeline.settings import Settings

CONNECT_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class _Steps:
    """What a worker needs to run some steps of a run: one object, so Dask does not look inside."""

    recon_job: ReconstructableJob
    dagster_run: DagsterRun
    run_config: Mapping[str, object]
    step_keys: Sequence[str]
    instance_ref: InstanceRef
    known_state: KnownExecutionState | None
    # The run's: without it a worker runs the steps with retries disabled, whatever their RetryPolicy.
    retry_mode: RetryMode


@dataclass(frozen=True)
class _StepEvents:
    """A step's events, wrapped so that Dask does not look inside when it sizes them.

    No events means the step was skipped because a step it depends on did not succeed.
    """

    events: Sequence[DagsterEvent]

    @property
    def succeeded(self) -> bool:
        return bool(self.events) and not any(event.is_step_failure for event in self.events)


def _run_steps(upstream: list[_StepEvents], previous: _StepEvents | None, steps: _Steps) -> _StepEvents:
    """Run the steps on this worker, once the steps they depend on (``upstream``) are done and
    the step submitted before them (``previous``, whatever its outcome) has ended.

    As dagster-dask's ``query_on_dask_worker``, but with the worker's open instance.
    """
    if not all(done.succeeded for done in upstream):
        return _StepEvents(())
    job = steps.recon_job.get_subset(op_selection=steps.dagster_run.resolved_op_selection)
    plan = create_execution_plan(
        job, run_config=steps.run_config, step_keys_to_execute=steps.step_keys, known_state=steps.known_state
    )
    instance = open_instance(serialize_value(steps.instance_ref))
    return _StepEvents(
        execute_plan(plan, job, instance, steps.dagster_run, run_config=steps.run_config, retry_mode=steps.retry_mode)
    )


class RunScopedDaskExecutor(DaskExecutor):
    """One Dask task per step, keyed by run, on a local cluster or an existing scheduler."""

    @property
    def retries(self) -> RetryMode:
        """Steps are retried by their ``RetryPolicy`` (dagster-dask's executor disables retries)."""
        return RetryMode.ENABLED

    def execute(self, plan_context: PlanOrchestrationContext, execution_plan: ExecutionPlan) -> Iterator[DagsterEvent]:
        run = plan_context.dagster_run
        record_run_worker(plan_context.instance, run.run_id)
        with self._client(plan_context.job_name) as client:
            futures = {}
            steps_by_task = {}
            # One step at a time: two Dagster steps at once in one process (the checks and
            # play_history, both after write_shards, on the in-process cluster) share its logging
            # setup and its standard-output capture for compute logs, which Dagster does not make
            # safe; a command's own output was seen going into a step's log file.
            previous = None
            for level in execution_plan.get_steps_to_execute_by_level():
                for step in level:
                    upstream = [  # a step done by the parent run is not in this plan
                        futures[key]
                        for step_input in step.step_inputs
                        for key in step_input.dependency_keys
                        if key in futures
                    ]
                    steps = _Steps(
                        plan_context.reconstructable_job,
                        run,
                        plan_context.run_config,
                        [step.key],
                        plan_context.instance.get_ref(),
                        execution_plan.known_state,
                        plan_context.retry_mode,
                    )
                    futures[step.key] = client.submit(
                        _run_steps,
                        upstream,
                        previous,
                        steps,
                        key=f"{plan_context.job_name}.{step.key}-{run.run_id}",
                        resources=get_dask_resource_requirements(step.tags),
                    )
                    steps_by_task[futures[step.key].key] = step
                    previous = futures[step.key]
            done = as_completed(list(futures.values()), with_results=True)
            for future, step_events in iterate_with_context(raise_execution_interrupts, done):
                if step_events.events:
                    yield from step_events.events
                else:
                    yield DagsterEvent.step_skipped_event(plan_context.for_step(steps_by_task[future.key]))

    @contextmanager
    def _client(self, job_name: str) -> Iterator[Client]:
        if self.cluster_type == "existing":
            address = self.cluster_configuration["address"]
            try:
                client = Client(address, timeout=CONNECT_TIMEOUT_SECONDS)
            except OSError as error:
                raise ConnectionError(
                    f"The Dask scheduler at {address} (DASK_SCHEDULER_ADDRESS) did not answer "
                    f"within {CONNECT_TIMEOUT_SECONDS} seconds: {error}"
                ) from error
            with client:
                yield client
        else:
            # Dask's worker profiler samples every thread's stack each 10 ms (sys._current_frames).
            # On CPython 3.11 that can deadlock with a garbage collection running a finalizer: a run
            # hung here with the GIL held in gc_collect_main under _PyThread_CurrentFrames. These
            # workers share the run's interpreter, so their profiler is off.
            with dask.config.set({"distributed.worker.profile.enabled": False}):
                cluster = LocalCluster(**self.build_dict(job_name))
            with cluster, Client(cluster) as client:
                yield client


@executor(
    name="dask",
    requirements=multiple_process_executor_requirements(),
    config_schema={
        "cluster": Field(
            Selector(
                {
                    "existing": Field({"address": StringSource}, description="An existing scheduler."),
                    "local": Field(Permissive(), description="distributed.LocalCluster arguments."),
                }
            )
        )
    },
)
def dask_executor(init_context: InitExecutorContext) -> RunScopedDaskExecutor:
    """Run each step as a Dask task on an existing cluster or on a local one started for the run."""
    cluster = cast(Mapping[str, Any], init_context.executor_config["cluster"])  # the Selector: one key
    ((cluster_type, cluster_configuration),) = cluster.items()
    return RunScopedDaskExecutor(cluster_type, cluster_configuration)


def dask_executor_for(settings: Settings) -> ExecutorDefinition:
    """The cluster at ``DASK_SCHEDULER_ADDRESS``, else a local cluster sized to this machine.

    The local cluster is started per run inside the run's process: one single-threaded
    worker per core, talking over in-process queues (no ports). Worker processes would cost
    every run several seconds to spawn them, import Dagster and the code location in each,
    and shut them down, for no gain: the engine's loops release the GIL. Its dashboard is
    off unless ``CSV_PIPELINE_DASK_DASHBOARD`` names an address: starting it (Bokeh) costs
    a run about 1.3 s, more than the whole aggregation of a small file.
    """
    if settings.dask_scheduler_address:
        cluster = {"existing": {"address": settings.dask_scheduler_address}}
    else:
        local = {"processes": False, "n_workers": os.cpu_count() or 1, "threads_per_worker": 1}
        if settings.dask_dashboard:
            local["dashboard_address"] = settings.dask_dashboard
        else:
            # Without a dashboard the scheduler still serves HTTP (health, metrics), by default on
            # port 8787, warning when that is taken: here on a free loopback port, dashboard off.
            local.update(dashboard_address="127.0.0.1:0", scheduler_kwargs={"dashboard": False})
        cluster = {"local": local}
    return dask_executor.configured({"cluster": cluster}, name="dask")
