"""Lakebase Autoscaling (w.postgres) through the official SDK and its operation waiters:
a project with its production branch and primary endpoint, a branch, a read-only endpoint,
a role and a database, an in-place compute update, credentials (and, with real PostgreSQL,
rows written through the endpoint), deletes. Every object created is read back."""
import sys

from google.protobuf.duration_pb2 import Duration

from databricks.sdk import WorkspaceClient
from databricks.sdk.common.types.fieldmask import FieldMask
from databricks.sdk.errors import BadRequest, NotFound, ResourceConflict, AlreadyExists
from databricks.sdk.service.postgres import (
    Branch,
    BranchSpec,
    Database,
    DatabaseDatabaseSpec,
    Endpoint,
    EndpointSpec,
    EndpointType,
    Project,
    ProjectDefaultEndpointSettings,
    ProjectSpec,
    Role,
    RoleAttributes,
    RoleRoleSpec,
)

from _common import check, expect_error, run

w = WorkspaceClient()
REAL_POSTGRES = "--postgres" in sys.argv
P = "projects/sdk-proj"
PROD = f"{P}/branches/production"
PRIMARY = f"{PROD}/endpoints/primary"


def secs(n):
    d = Duration()
    d.seconds = n
    return d


def project_branch_and_endpoints():
    project = w.postgres.create_project(
        project=Project(
            spec=ProjectSpec(
                display_name="SDK project",
                default_endpoint_settings=ProjectDefaultEndpointSettings(
                    autoscaling_limit_min_cu=0.5, autoscaling_limit_max_cu=2, suspend_timeout_duration=secs(300)
                ),
            )
        ),
        project_id="sdk-proj",
    ).wait()
    check(project.name == P, f"project name {project.name}")
    got = w.postgres.get_project(name=P)
    check(got.status.display_name == "SDK project", f"status {got.status}")
    check(got.spec is None, "GET returns status, not spec")
    check(got.status.default_branch == PROD, f"default branch {got.status.default_branch}")
    check(P in [p.name for p in w.postgres.list_projects()], "project listed")
    e = expect_error(AlreadyExists, w.postgres.create_project, project=Project(spec=ProjectSpec()), project_id="sdk-proj")
    check("already exists" in str(e), str(e))

    branches = {b.name: b for b in w.postgres.list_branches(parent=P)}
    check(branches[PROD].status.default is True, "production is the default branch")
    primary = w.postgres.get_endpoint(name=PRIMARY)
    check(primary.status.endpoint_type == EndpointType.ENDPOINT_TYPE_READ_WRITE, f"{primary.status}")
    check(primary.status.hosts and primary.status.hosts.host, "primary has a host")
    check(primary.status.autoscaling_limit_max_cu == 2, f"defaults applied: {primary.status}")
    e = expect_error(BadRequest, w.postgres.delete_endpoint, name=PRIMARY)
    check("read-write" in str(e), str(e))

    cred = w.postgres.generate_database_credential(endpoint=PRIMARY)
    check(cred.token and cred.expire_time, "credential has a token and expiry")
    if REAL_POSTGRES:
        import psycopg2

        with psycopg2.connect(
            host=primary.status.hosts.host,
            user=w.current_user.me().user_name,
            password=cred.token,
            dbname="databricks_postgres",
            sslmode="require",
        ) as conn:
            with conn.cursor() as cur:
                cur.execute("CREATE TABLE items (id int); INSERT INTO items VALUES (1), (2)")

    dev = w.postgres.create_branch(
        parent=P, branch=Branch(spec=BranchSpec(source_branch=PROD, no_expiry=True)), branch_id="dev"
    ).wait()
    check(dev.name == f"{P}/branches/dev", dev.name)
    dev = w.postgres.get_branch(name=dev.name)
    check(dev.status.source_branch == PROD and dev.status.default is False, f"{dev.status}")
    dev_primary = w.postgres.get_endpoint(name=f"{dev.name}/endpoints/primary")
    check(dev_primary.status.hosts.host != primary.status.hosts.host, "each branch has its own primary")
    if REAL_POSTGRES:
        import psycopg2

        token = w.postgres.generate_database_credential(endpoint=dev_primary.name).token
        with psycopg2.connect(
            host=dev_primary.status.hosts.host,
            user=w.current_user.me().user_name,
            password=token,
            dbname="databricks_postgres",
        ) as conn:
            with conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM items")
                check(cur.fetchone()[0] == 2, "the branch holds the source's rows")

    reader = w.postgres.create_endpoint(
        parent=PROD,
        endpoint=Endpoint(spec=EndpointSpec(endpoint_type=EndpointType.ENDPOINT_TYPE_READ_ONLY)),
        endpoint_id="reader",
    ).wait()
    reader = w.postgres.get_endpoint(name=reader.name)
    check(reader.status.endpoint_type == EndpointType.ENDPOINT_TYPE_READ_ONLY, f"{reader.status}")
    check(
        {e.name for e in w.postgres.list_endpoints(parent=PROD)} == {PRIMARY, reader.name},
        "the branch lists both endpoints",
    )

    updated = w.postgres.update_endpoint(
        name=PRIMARY,
        endpoint=Endpoint(spec=EndpointSpec(endpoint_type=EndpointType.ENDPOINT_TYPE_READ_WRITE, autoscaling_limit_max_cu=4)),
        update_mask=FieldMask(["spec.autoscaling_limit_max_cu"]),
    ).wait()
    check(updated.uid == primary.uid, "a CU change updates in place")
    check(w.postgres.get_endpoint(name=PRIMARY).status.autoscaling_limit_max_cu == 4, "new max CU reported")

    role = w.postgres.create_role(
        parent=PROD,
        role=Role(spec=RoleRoleSpec(postgres_role="app_role", attributes=RoleAttributes(createdb=True))),
        role_id="app-role",
    ).wait()
    role = w.postgres.get_role(name=role.name)
    check(role.status.postgres_role == "app_role" and role.status.attributes.createdb is True, f"{role.status}")
    check(w.postgres.reveal_role_password(name=role.name).password, "a password role has a generated password")
    db = w.postgres.create_database(
        parent=PROD,
        database=Database(spec=DatabaseDatabaseSpec(role=role.name, postgres_database="app_db")),
        database_id="app-db",
    ).wait()
    db = w.postgres.get_database(name=db.name)
    check(db.status.postgres_database == "app_db" and db.status.role == role.name, f"{db.status}")
    check(db.name in [d.name for d in w.postgres.list_databases(parent=PROD)], "database listed")
    check(role.name in [r.name for r in w.postgres.list_roles(parent=PROD)], "role listed")

    # Deletes: operations carry a response the waiter accepts.
    w.postgres.delete_database(name=db.name).wait()
    expect_error(NotFound, w.postgres.get_database, name=db.name)
    w.postgres.delete_role(name=role.name).wait()
    expect_error(NotFound, w.postgres.get_role, name=role.name)
    w.postgres.delete_endpoint(name=reader.name).wait()
    expect_error(NotFound, w.postgres.get_endpoint, name=reader.name)
    w.postgres.delete_branch(name=dev.name, purge=True).wait()
    expect_error(NotFound, w.postgres.get_branch, name=dev.name)
    w.postgres.delete_project(name=P, purge=True).wait()
    expect_error(NotFound, w.postgres.get_project, name=P)
    _ = ResourceConflict


if __name__ == "__main__":
    run(project_branch_and_endpoints)
