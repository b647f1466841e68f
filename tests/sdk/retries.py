"""With injected 429/503 faults (--fail-rate) the SDK still succeeds by retrying."""
from databricks.sdk import WorkspaceClient
from databricks.sdk.service.database import DatabaseInstance

from _common import check, run

w = WorkspaceClient()


def survives_injected_faults():
    for i in range(6):
        w.jobs.create(name=f"retry-{i}")
    names = sorted(j.settings.name for j in w.jobs.list())
    check(names == [f"retry-{i}" for i in range(6)], f"{names}")
    inst = w.database.create_database_instance_and_wait(DatabaseInstance(name="retry-db", capacity="CU_1"))
    check(inst.state.value == "AVAILABLE", f"{inst.state}")


run(survives_injected_faults)
