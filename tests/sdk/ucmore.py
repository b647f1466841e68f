"""Unity Catalog external locations, UC secrets and job runs through the official SDK: the
objects a lakebundle deploy made (expected set in argv[1], JSON) read back, then the SDK's own
create / get / update / list / delete round trip."""
import json
import sys

from databricks.sdk import WorkspaceClient
from databricks.sdk.common.types.fieldmask import FieldMask
from databricks.sdk.errors import BadRequest, NotFound, ResourceConflict
from databricks.sdk.service import catalog, jobs

from _common import check, expect_error, run

w = WorkspaceClient()
EXPECTED = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}


def grants_of(securable, full_name):
    resp = w.grants.get(securable_type=securable, full_name=full_name, max_results=0)
    return sorted(
        (a.principal, sorted(p if isinstance(p, str) else p.value for p in (a.privileges or [])))
        for a in (resp.privilege_assignments or [])
    )


def deployed_objects_read_back():
    check(EXPECTED, "expected objects passed in")
    loc = EXPECTED["external_location"]
    info = w.external_locations.get(loc["name"])
    check(info.url == loc["url"], f"url {info.url}")
    check(info.credential_name == loc["credential_name"], f"credential {info.credential_name}")
    check(info.comment == loc["comment"], f"comment {info.comment!r}")
    check(loc["name"] in {x.name for x in w.external_locations.list()}, "location listed")
    check(grants_of("external_location", loc["name"]) == [tuple(g) for g in loc["grants"]],
          f"location grants {grants_of('external_location', loc['name'])}")

    sec = EXPECTED["secret"]
    got = w.secrets_uc.get_secret(sec["full_name"])
    check(got.effective_value is None, "the value only comes back when asked for")
    check(got.comment == sec["comment"], f"secret comment {got.comment!r}")
    got = w.secrets_uc.get_secret(sec["full_name"], include_value=True)
    check(got.effective_value == sec["value"], "the deployed value")
    c, s, _ = sec["full_name"].split(".")
    listed = {x.full_name for x in w.secrets_uc.list_secrets(catalog_name=c, schema_name=s)}
    check(sec["full_name"] in listed, f"secret listed: {listed}")
    check(grants_of("secret", sec["full_name"]) == [tuple(g) for g in sec["grants"]],
          f"secret grants {grants_of('secret', sec['full_name'])}")

    r = EXPECTED["job_run"]
    got = w.jobs.get_run(int(r["run_id"]))
    check(str(got.job_id) == r["job_id"], f"run of job {got.job_id}")
    check(got.state.result_state == jobs.RunResultState.SUCCESS, f"{got.state}")


def sdk_round_trip():
    loc = w.external_locations.create(name="SDK_Loc", url="s3://sdk-bucket/x/",
                                      credential_name="cred", skip_validation=True)
    check(loc.name == "sdk_loc" and loc.url == "s3://sdk-bucket/x", f"{loc.name} {loc.url}")
    expect_error(ResourceConflict, w.external_locations.create, name="sdk_loc",
                 url="s3://elsewhere", credential_name="cred")
    expect_error(BadRequest, w.external_locations.create, name="inner",
                 url="s3://sdk-bucket/x/inner", credential_name="cred")
    loc = w.external_locations.update("sdk_loc", comment="updated", read_only=True)
    check(loc.comment == "updated" and loc.read_only, f"{loc}")
    w.external_locations.delete("sdk_loc", force=True)
    expect_error(NotFound, w.external_locations.get, "sdk_loc")

    w.catalogs.create(name="sdk_sec")
    w.schemas.create(name="s", catalog_name="sdk_sec")
    created = w.secrets_uc.create_secret(
        catalog.Secret(name="tok", catalog_name="sdk_sec", schema_name="s", value="v1",
                       comment="c1"))
    check(created.full_name == "sdk_sec.s.tok", created.full_name)
    check(created.effective_value is None, "no value in the create response")
    w.secrets_uc.update_secret(
        "sdk_sec.s.tok",
        catalog.Secret(name="tok", catalog_name="sdk_sec", schema_name="s", value="v2",
                       comment="not in the mask"),
        FieldMask(field_mask=["value"]))
    got = w.secrets_uc.get_secret("sdk_sec.s.tok", include_value=True)
    check(got.effective_value == "v2" and got.comment == "c1", f"{got}")
    w.secrets_uc.delete_secret("sdk_sec.s.tok")
    expect_error(NotFound, w.secrets_uc.get_secret, "sdk_sec.s.tok")
    w.catalogs.delete("sdk_sec", force=True)


run(deployed_objects_read_back, sdk_round_trip)
