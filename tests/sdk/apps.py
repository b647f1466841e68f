"""Apps through the official SDK."""
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound, ResourceAlreadyExists
from databricks.sdk.service.apps import App, AppDeployment, AppDeploymentState, ComputeState

from _common import check, expect_error, run, wait_until

w = WorkspaceClient()


def lifecycle():
    app = w.apps.create_and_wait(app=App(name="sdk-app", description="d"))
    check(app.compute_status.state == ComputeState.ACTIVE, f"{app.compute_status}")
    me = w.current_user.me().user_name
    src = f"/Workspace/Users/{me}/sdk-app"
    w.workspace.mkdirs(src)
    dep = w.apps.deploy_and_wait(app_name="sdk-app", app_deployment=AppDeployment(source_code_path=src))
    check(dep.status.state == AppDeploymentState.SUCCEEDED, f"{dep.status}")
    check(w.apps.get(name="sdk-app").active_deployment.deployment_id == dep.deployment_id, "active deployment")
    stopped = w.apps.stop_and_wait(name="sdk-app")
    check(stopped.compute_status.state == ComputeState.STOPPED, f"{stopped.compute_status}")
    expect_error(ResourceAlreadyExists, w.apps.create, app=App(name="sdk-app"))
    w.apps.delete(name="sdk-app")
    check(w.apps.get(name="sdk-app").compute_status.state == ComputeState.DELETING, "DELETING visible")
    wait_until(lambda: _gone("sdk-app"), "app deleted")


def _gone(name):
    try:
        w.apps.get(name=name)
        return False
    except NotFound:
        return True


run(lifecycle)
