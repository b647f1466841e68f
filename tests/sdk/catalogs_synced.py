"""Database catalogs and synced tables through the official SDK (emulator has --lake-dir)."""
import time

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import InvalidParameterValue, NotFound
from databricks.sdk.service.database import (
    DatabaseCatalog,
    DatabaseInstance,
    NewPipelineSpec,
    SyncedDatabaseTable,
    SyncedTableSchedulingPolicy,
    SyncedTableSpec,
)

from _common import check, expect_error, run, wait_until

w = WorkspaceClient()


def catalogs_and_synced_tables():
    w.database.create_database_instance_and_wait(DatabaseInstance(name="cat-db", capacity="CU_1"))
    expect_error(
        InvalidParameterValue,
        w.database.create_database_catalog,
        DatabaseCatalog(name="cat_missing_db", database_instance_name="cat-db", database_name="nodb"),
    )
    cat = w.database.create_database_catalog(
        DatabaseCatalog(name="sdk_cat", database_instance_name="cat-db", database_name="appdb", create_database_if_not_exists=True)
    )
    check(cat.uid, "catalog uid")
    got = w.database.get_database_catalog(name="sdk_cat")
    check(got.database_name == "appdb" and not got.create_database_if_not_exists, "input-only flag dropped")
    check([c.name for c in w.database.list_database_catalogs(instance_name="cat-db")] == ["sdk_cat"], "list catalogs")

    def synced(source):
        return SyncedDatabaseTable(
            name="sdk_cat.public.customers",
            spec=SyncedTableSpec(
                source_table_full_name=source,
                primary_key_columns=["customer_id"],
                scheduling_policy=SyncedTableSchedulingPolicy.SNAPSHOT,
                new_pipeline_spec=NewPipelineSpec(storage_catalog="src", storage_schema="gold"),
            ),
        )

    expect_error(NotFound, w.database.create_synced_database_table, synced("src.gold.absent"))
    t = w.database.create_synced_database_table(synced("src.gold.customers"))
    check(t.data_synchronization_status.pipeline_id, "pipeline id")
    wait_until(
        lambda: w.database.get_synced_database_table(name="sdk_cat.public.customers").unity_catalog_provisioning_state.value == "ACTIVE",
        "synced table active",
    )
    t = w.database.get_synced_database_table(name="sdk_cat.public.customers")
    check(t.effective_database_instance_name == "cat-db", "effective instance")
    check(t.data_synchronization_status.detailed_state.value.startswith("SYNCED_TABLE_ONLINE"), f"{t.data_synchronization_status}")
    names = [s.name for s in w.database.list_synced_database_tables(instance_name="cat-db")]
    check(names == ["sdk_cat.public.customers"], f"listed {names}")
    w.database.delete_synced_database_table(name="sdk_cat.public.customers", purge_data=True)
    expect_error(NotFound, w.database.get_synced_database_table, name="sdk_cat.public.customers")
    w.database.delete_database_catalog(name="sdk_cat")
    expect_error(NotFound, w.database.get_database_catalog, name="sdk_cat")
    w.database.delete_database_instance(name="cat-db", purge=True)


run(catalogs_and_synced_tables)
