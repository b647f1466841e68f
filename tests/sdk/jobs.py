"""Jobs 2.2 through the official SDK."""
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import InvalidParameterValue, NotFound
from databricks.sdk.service import jobs

from _common import check, expect_error, run

w = WorkspaceClient()


def crud_pages_and_runs():
    task = jobs.Task(task_key="main", notebook_task=jobs.NotebookTask(notebook_path="/Workspace/n"))
    created = w.jobs.create(name="sdk-job", tasks=[task], tags={"team": "a"})
    job_id = created.job_id
    check(job_id > 2**53, f"int64 id {job_id}")
    job = w.jobs.get(job_id=job_id)
    check(job.settings.name == "sdk-job" and job.settings.tasks[0].task_key == "main", "get")
    for i in range(5):
        w.jobs.create(name=f"filler-{i}")
    listed = list(w.jobs.list(limit=2))
    check(len(listed) == 6, f"all pages listed: {len(listed)}")
    check(len({j.job_id for j in listed}) == 6, "no duplicates across pages")
    w.jobs.reset(job_id=job_id, new_settings=jobs.JobSettings(name="sdk-job-reset", tasks=[task]))
    check(w.jobs.get(job_id=job_id).settings.name == "sdk-job-reset", "reset")
    run_ = w.jobs.run_now_and_wait(job_id=job_id)
    check(run_.state.life_cycle_state == jobs.RunLifeCycleState.TERMINATED, f"{run_.state}")
    check(run_.state.result_state == jobs.RunResultState.SUCCESS, f"{run_.state}")
    w.jobs.delete(job_id=job_id)
    expect_error(NotFound, w.jobs.get, job_id=job_id)
    for j in listed:
        if j.job_id != job_id:
            w.jobs.delete(job_id=j.job_id)


def validation():
    e = expect_error(
        InvalidParameterValue,
        w.jobs.create,
        name="bad",
        tasks=[jobs.Task(task_key="a", depends_on=[jobs.TaskDependency(task_key="ghost")])],
    )
    check("ghost" in str(e), f"names the missing task: {e}")
    expect_error(NotFound, w.jobs.run_now, job_id=12345)


run(crud_pages_and_runs, validation)
