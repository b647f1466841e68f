"""Workspace files, current user and OAuth M2M through the official SDK."""
import io
import os

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound, ResourceAlreadyExists
from databricks.sdk.service.workspace import ImportFormat, ObjectType

from _common import check, expect_error, run

w = WorkspaceClient()


def files():
    me = w.current_user.me()
    check(me.user_name == "local-user@example.com", f"me: {me.user_name}")
    base = f"/Workspace/Users/{me.user_name}/.bundle/sdk/dev/state"
    w.workspace.mkdirs(base)
    payload = b'{"serial": 1, "bytes": "\\u00e9"}\n'
    w.workspace.upload(f"{base}/resources.json", io.BytesIO(payload), format=ImportFormat.AUTO, overwrite=True)
    check(w.workspace.download(f"{base}/resources.json").read() == payload, "round trip")
    expect_error(
        ResourceAlreadyExists,
        w.workspace.upload,
        f"{base}/resources.json",
        io.BytesIO(b"x"),
        format=ImportFormat.AUTO,
        overwrite=False,
    )
    st = w.workspace.get_status(f"{base}/resources.json")
    check(st.object_type == ObjectType.FILE and st.size == len(payload), f"{st}")
    check([o.path for o in w.workspace.list(base)] == [f"{base}/resources.json"], "list")
    w.workspace.delete(f"{base}/resources.json")
    expect_error(NotFound, w.workspace.get_status, f"{base}/resources.json")


def m2m_oauth():
    sp = WorkspaceClient(
        host=os.environ["DATABRICKS_HOST"],
        client_id=os.environ["SDK_CLIENT_ID"],
        client_secret=os.environ["SDK_CLIENT_SECRET"],
        auth_type="oauth-m2m",
    )
    me = sp.current_user.me()
    check(me.user_name == os.environ["SDK_CLIENT_ID"], f"service principal identity: {me.user_name}")
    check(sp.config.auth_type == "oauth-m2m", sp.config.auth_type)


run(files, m2m_oauth)
