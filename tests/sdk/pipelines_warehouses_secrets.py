"""Pipelines, SQL warehouses and secret scopes through the official SDK: every object
created is read back, with the SDK's own waiters where it has them."""
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound, ResourceAlreadyExists, ResourceDoesNotExist
from databricks.sdk.service import pipelines, sql, workspace

from _common import check, expect_error, run, wait_until

w = WorkspaceClient()


def pipeline_lifecycle():
    created = w.pipelines.create(
        name="sdk-pipeline",
        catalog="main",
        schema="sdk",
        serverless=True,
        libraries=[pipelines.PipelineLibrary(notebook=pipelines.NotebookLibrary(path="/Workspace/etl"))],
        configuration={"k": "v"},
    )
    pid = created.pipeline_id
    got = w.pipelines.get(pid)
    check(got.name == "sdk-pipeline" and got.spec.id == pid, f"get: {got}")
    check(got.spec.libraries[0].notebook.path == "/Workspace/etl", "libraries read back")
    check(got.state == pipelines.PipelineState.IDLE, f"a new pipeline is IDLE: {got.state}")
    listed = [p.pipeline_id for p in w.pipelines.list_pipelines()]
    check(pid in listed, f"listed: {listed}")
    w.pipelines.update(pid, name="sdk-pipeline-2", catalog="main", schema="sdk", serverless=True)
    got = w.pipelines.get(pid)
    check(got.name == "sdk-pipeline-2" and not got.spec.libraries, "edit replaces the settings")
    update_id = w.pipelines.start_update(pid, full_refresh=True).update_id

    def done():
        u = w.pipelines.get_update(pid, update_id).update
        return u if u.state == pipelines.UpdateInfoState.COMPLETED else None

    info = wait_until(done, "the update to complete")
    check(info.full_refresh, "the update keeps its request")
    updates = w.pipelines.list_updates(pid).updates
    check([u.update_id for u in updates] == [update_id], f"updates: {updates}")
    w.pipelines.start_update(pid)
    w.pipelines.stop_and_wait(pid)
    check(w.pipelines.get(pid).state == pipelines.PipelineState.IDLE, "stopped")
    w.pipelines.delete(pid)
    expect_error(NotFound, w.pipelines.get, pid)


def warehouse_lifecycle():
    wh = w.warehouses.create_and_wait(name="sdk-wh", cluster_size="Small", auto_stop_mins=20)
    check(wh.state == sql.State.RUNNING, f"create_and_wait: {wh.state}")
    got = w.warehouses.get(wh.id)
    check(got.name == "sdk-wh" and got.auto_stop_mins == 20 and got.jdbc_url, f"get: {got}")
    check(any(x.id == wh.id for x in w.warehouses.list()), "listed")
    edited = w.warehouses.edit_and_wait(wh.id, name="sdk-wh", cluster_size="Medium", max_num_clusters=3)
    check(edited.cluster_size == "Medium" and edited.max_num_clusters == 3, f"edit: {edited}")
    stopped = w.warehouses.stop_and_wait(wh.id)
    check(stopped.state == sql.State.STOPPED, f"stop: {stopped.state}")
    started = w.warehouses.start_and_wait(wh.id)
    check(started.state == sql.State.RUNNING, f"start: {started.state}")
    w.warehouses.delete(wh.id)
    check(all(x.id != wh.id for x in w.warehouses.list()), "a deleted warehouse leaves the list")


def secret_scope_lifecycle():
    w.secrets.create_scope("sdk-scope")
    expect_error(ResourceAlreadyExists, w.secrets.create_scope, "sdk-scope")
    scopes = {s.name: s for s in w.secrets.list_scopes()}
    check(scopes["sdk-scope"].backend_type == workspace.ScopeBackendType.DATABRICKS, f"{scopes}")
    w.secrets.put_acl("sdk-scope", "users", workspace.AclPermission.READ)
    acls = {a.principal: a.permission for a in w.secrets.list_acls("sdk-scope")}
    me = w.current_user.me().user_name
    check(acls == {me: workspace.AclPermission.MANAGE, "users": workspace.AclPermission.READ}, f"{acls}")
    check(w.secrets.get_acl("sdk-scope", "users").permission == workspace.AclPermission.READ, "get_acl")
    w.secrets.put_secret("sdk-scope", "token", string_value="s3cr3t")
    keys = [s.key for s in w.secrets.list_secrets("sdk-scope")]
    check(keys == ["token"], f"secrets: {keys}")
    w.secrets.delete_acl("sdk-scope", "users")
    expect_error(ResourceDoesNotExist, w.secrets.get_acl, "sdk-scope", "users")
    w.secrets.delete_scope("sdk-scope")
    check(all(s.name != "sdk-scope" for s in w.secrets.list_scopes()), "deleted")
    expect_error(ResourceDoesNotExist, w.secrets.delete_scope, "sdk-scope")


run(pipeline_lifecycle, warehouse_lifecycle, secret_scope_lifecycle)
