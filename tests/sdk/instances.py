"""Database instances and credentials through the official SDK."""
import uuid

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import InvalidParameterValue, NotFound, ResourceAlreadyExists
from databricks.sdk.service.database import DatabaseInstance, DatabaseInstanceRef, DatabaseInstanceState

from _common import check, expect_error, run, wait_until

w = WorkspaceClient()


def lifecycle():
    inst = w.database.create_database_instance_and_wait(
        DatabaseInstance(name="sdk-db", capacity="CU_1", node_count=1, stopped=False)
    )
    check(inst.state == DatabaseInstanceState.AVAILABLE, f"state {inst.state}")
    check(inst.read_write_dns, "read_write_dns set")
    check(inst.effective_stopped is False, "effective_stopped mirrors the input")
    check(inst.uid and inst.creator and inst.creation_time and inst.pg_version, "outputs present")
    got = w.database.get_database_instance(name="sdk-db")
    check(got.uid == inst.uid, "get returns the same instance")
    check(got.node_count is None, "node_count is input-only")
    names = [i.name for i in w.database.list_database_instances()]
    check("sdk-db" in names, f"listed: {names}")

    w.database.update_database_instance(
        name="sdk-db", database_instance=DatabaseInstance(name="sdk-db", capacity="CU_4"), update_mask="*"
    )
    resized = wait_until(
        lambda: (i := w.database.get_database_instance(name="sdk-db")).state == DatabaseInstanceState.AVAILABLE and i,
        "resize done",
    )
    check(resized.capacity == "CU_4", f"capacity {resized.capacity}")

    w.database.update_database_instance(
        name="sdk-db", database_instance=DatabaseInstance(name="sdk-db", stopped=True), update_mask="stopped"
    )
    wait_until(lambda: w.database.get_database_instance(name="sdk-db").state == DatabaseInstanceState.STOPPED, "stopped")
    check(w.database.get_database_instance(name="sdk-db").effective_stopped is True, "effective_stopped true")
    w.database.update_database_instance(
        name="sdk-db", database_instance=DatabaseInstance(name="sdk-db", stopped=False), update_mask="stopped"
    )
    wait_until(lambda: w.database.get_database_instance(name="sdk-db").state == DatabaseInstanceState.AVAILABLE, "started")

    cred = w.database.generate_database_credential(request_id=str(uuid.uuid4()), instance_names=["sdk-db"])
    check(cred.token and cred.expiration_time, "credential has token and expiry")

    w.database.delete_database_instance(name="sdk-db", purge=True)
    expect_error(NotFound, w.database.get_database_instance, name="sdk-db")


def errors():
    expect_error(NotFound, w.database.get_database_instance, name="no-such-instance")
    expect_error(InvalidParameterValue, w.database.create_database_instance, DatabaseInstance(name="x1", capacity="CU_3"))
    e = expect_error(InvalidParameterValue, w.database.create_database_instance, DatabaseInstance(name="bad_name!", capacity="CU_1"))
    check("name" in str(e), f"message names the field: {e}")
    w.database.create_database_instance(DatabaseInstance(name="dup", capacity="CU_1"))
    expect_error(ResourceAlreadyExists, w.database.create_database_instance, DatabaseInstance(name="dup", capacity="CU_1"))
    expect_error(NotFound, w.database.generate_database_credential, instance_names=["nowhere"])
    w.database.delete_database_instance(name="dup", purge=True)


def child_and_pages():
    w.database.create_database_instance_and_wait(DatabaseInstance(name="parent", capacity="CU_1"))
    child = w.database.create_database_instance(
        DatabaseInstance(name="child", capacity="CU_1", parent_instance_ref=DatabaseInstanceRef(name="parent"))
    ).response
    check(child.parent_instance_ref.name == "parent", "child points at parent")
    for i in range(3):
        w.database.create_database_instance(DatabaseInstance(name=f"p{i}", capacity="CU_1"))
    names = [i.name for i in w.database.list_database_instances(page_size=2)]
    check(sorted(names) == sorted(["parent", "child", "p0", "p1", "p2"]), f"all pages: {names}")
    w.database.delete_database_instance(name="parent", purge=True, force=True)
    expect_error(NotFound, w.database.get_database_instance, name="child")
    for i in range(3):
        w.database.delete_database_instance(name=f"p{i}", purge=True)


run(lifecycle, errors, child_and_pages)
