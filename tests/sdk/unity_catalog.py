"""Unity Catalog catalogs, schemas, volumes and grants through the official SDK: the objects a
lakebundle deploy made (expected set in argv[1], JSON) read back, then the SDK's own create /
list / update / rename / grant / delete round trip."""
import json
import sys

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import BadRequest, NotFound, ResourceConflict
from databricks.sdk.service import catalog

from _common import check, expect_error, run

w = WorkspaceClient()
EXPECTED = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}


def grants_of(securable, full_name):
    resp = w.grants.get(securable_type=securable, full_name=full_name, max_results=0)
    return sorted(
        (a.principal, sorted(p.value for p in (a.privileges or [])))
        for a in (resp.privilege_assignments or [])
    )


def deployed_objects_read_back():
    check(EXPECTED, "expected objects passed in")
    names = {c.name for c in w.catalogs.list()}
    for c in EXPECTED["catalogs"]:
        check(c["name"] in names, f"catalog {c['name']} listed: {names}")
        info = w.catalogs.get(c["name"])
        check(info.comment == c["comment"], f"catalog comment {info.comment!r}")
        check(info.catalog_type == catalog.CatalogType.MANAGED_CATALOG, f"{info.catalog_type}")
        check(grants_of("catalog", c["name"]) == [tuple(g) for g in c["grants"]],
              f"catalog grants {grants_of('catalog', c['name'])}")
    for s in EXPECTED["schemas"]:
        info = w.schemas.get(s["full_name"])
        check(info.full_name == s["full_name"], f"schema {info.full_name}")
        listed = {x.full_name for x in w.schemas.list(catalog_name=info.catalog_name)}
        check(s["full_name"] in listed, f"schema listed: {listed}")
        check(grants_of("schema", s["full_name"]) == [tuple(g) for g in s["grants"]],
              f"schema grants {grants_of('schema', s['full_name'])}")
    for v in EXPECTED["volumes"]:
        info = w.volumes.read(v["full_name"])
        check(info.volume_type == catalog.VolumeType.MANAGED, f"{info.volume_type}")
        check(info.comment == v["comment"], f"volume comment {info.comment!r}")
        c, s, _ = v["full_name"].split(".")
        listed = {x.full_name for x in w.volumes.list(catalog_name=c, schema_name=s)}
        check(v["full_name"] in listed, f"volume listed: {listed}")
        check(grants_of("volume", v["full_name"]) == [tuple(g) for g in v["grants"]],
              f"volume grants {grants_of('volume', v['full_name'])}")


def sdk_round_trip():
    cat = w.catalogs.create(name="SDK_Cat", comment="c", properties={"k": "v"})
    check(cat.name == "sdk_cat", f"lower-cased: {cat.name}")
    expect_error(ResourceConflict, w.catalogs.create, name="sdk_cat")
    sch = w.schemas.create(name="s1", catalog_name="sdk_cat", comment="s")
    check(sch.full_name == "sdk_cat.s1", sch.full_name)
    expect_error(NotFound, w.schemas.create, name="s1", catalog_name="nope")
    vol = w.volumes.create(catalog_name="sdk_cat", schema_name="s1", name="v1",
                           volume_type=catalog.VolumeType.MANAGED)
    check(vol.storage_location, "managed location generated")
    expect_error(BadRequest, w.volumes.create, catalog_name="sdk_cat", schema_name="s1",
                 name="v2", volume_type=catalog.VolumeType.MANAGED, storage_location="s3://x/y")
    check(w.schemas.update("sdk_cat.s1", comment="s2").comment == "s2", "schema update")
    renamed = w.volumes.update("sdk_cat.s1.v1", new_name="v9", comment="vc")
    check(renamed.full_name == "sdk_cat.s1.v9" and renamed.comment == "vc", f"{renamed}")
    expect_error(NotFound, w.volumes.read, "sdk_cat.s1.v1")

    resp = w.grants.update(
        securable_type="schema", full_name="sdk_cat.s1",
        changes=[catalog.PermissionsChange(principal="team",
                                           add=[catalog.Privilege.USE_SCHEMA, catalog.Privilege.SELECT])])
    check([a.principal for a in resp.privilege_assignments] == ["team"], f"{resp}")
    w.grants.update(
        securable_type="schema", full_name="sdk_cat.s1",
        changes=[catalog.PermissionsChange(principal="team", add=[catalog.Privilege.MODIFY],
                                           remove=[catalog.Privilege.SELECT])])
    check(grants_of("schema", "sdk_cat.s1") == [("team", ["MODIFY", "USE_SCHEMA"])],
          f"{grants_of('schema', 'sdk_cat.s1')}")

    expect_error(BadRequest, w.catalogs.delete, "sdk_cat")
    w.catalogs.update("sdk_cat", new_name="sdk_cat2")
    check(w.schemas.get("sdk_cat2.s1").catalog_name == "sdk_cat2", "children renamed")
    check(grants_of("schema", "sdk_cat2.s1") == [("team", ["MODIFY", "USE_SCHEMA"])], "grants moved")
    w.catalogs.delete("sdk_cat2", force=True)
    expect_error(NotFound, w.catalogs.get, "sdk_cat2")
    expect_error(NotFound, w.schemas.get, "sdk_cat2.s1")
    expect_error(NotFound, w.volumes.read, "sdk_cat2.s1.v9")


run(deployed_objects_read_back, sdk_round_trip)
