"""Run the SDK snippets of the seed document (sections Setup, 1, 2, 5, 6) unchanged.

The code is read from ../shared/seed/lakebase-provisioned.md at run time, so it is exactly
the published text. Only placeholders are substituted: `https://<WORKSPACE_URL>/` (the
host) and `<SERVICE_PRINCIPAL_ID>` / `<SECRET>` (the emulator's OAuth client).

The blocks are alternatives rather than one script (the first one creates `my-instance`
twice), so each block is split at its top-level comments into snippets, and before each
snippet the workspace is put in the state the snippet presumes: names it creates are
removed first, names it only uses are made to exist. The snippet text is not touched.
"""
import os
import re
import sys
import time

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound

SEED = sys.argv[1]
SECTIONS = ("## Setup", "## 1.", "## 2.", "## 5.", "## 6.")

admin = WorkspaceClient()


def blocks():
    text = open(SEED, encoding="utf-8").read()
    parts = re.split(r"^(## .*)$", text, flags=re.M)
    for i in range(1, len(parts), 2):
        if parts[i].startswith(SECTIONS):
            for code in re.findall(r"```python\n(.*?)```", parts[i + 1], flags=re.S):
                yield parts[i], code


def snippets(code):
    """Split a block at top-level comment lines that follow a blank line."""
    out, cur = [], []
    for line in code.splitlines():
        if line.startswith("# ") and (not cur or cur[-1].strip() == "") and any(l.strip() and not l.startswith("#") for l in cur):
            out.append("\n".join(cur))
            cur = []
        cur.append(line)
    if any(l.strip() for l in cur):
        out.append("\n".join(cur))
    return out


def settle(name, available):
    deadline = time.time() + 60
    while time.time() < deadline:
        state = admin.database.get_database_instance(name=name).state.value
        if state == "STOPPED" and available:
            admin.api_client.do("PATCH", f"/api/2.0/database/instances/{name}", query={"update_mask": "stopped"}, body={"name": name, "stopped": False})
        elif state in ("AVAILABLE", "STOPPED"):
            return
        time.sleep(0.1)
    raise AssertionError(f"{name} never settled")


def drop_instance(name):
    try:
        admin.database.delete_database_instance(name=name, purge=True, force=True)
    except NotFound:
        pass


def ensure_instance(name, available):
    try:
        admin.database.get_database_instance(name=name)
    except NotFound:
        admin.api_client.do("POST", "/api/2.0/database/instances", body={"name": name, "capacity": "CU_1"})
    settle(name, available)


def drop_catalog(name):
    try:
        admin.database.delete_database_catalog(name=name)
    except NotFound:
        pass


def ensure_catalog(name):
    try:
        admin.database.get_database_catalog(name=name)
    except NotFound:
        ensure_instance("my-instance", True)
        admin.api_client.do("POST", "/api/2.0/database/catalogs", body={
            "name": name, "database_instance_name": "my-instance", "database_name": "databricks_postgres"})


def drop_synced(name):
    try:
        admin.database.delete_synced_database_table(name=name)
    except NotFound:
        pass


def ensure_synced(name):
    try:
        admin.database.get_synced_database_table(name=name)
    except NotFound:
        ensure_catalog(name.split(".")[0])
        admin.api_client.do("POST", "/api/2.0/database/synced_tables", body={"name": name, "spec": {
            "source_table_full_name": "analytics.gold.customer_features", "primary_key_columns": ["customer_id"],
            "scheduling_policy": "TRIGGERED", "new_pipeline_spec": {"storage_catalog": "analytics", "storage_schema": "gold"}}})


def prepare(code):
    made_inst = re.findall(r"create_database_instance(?:_and_wait)?\(\s*DatabaseInstance\(\s*name=\"([^\"]+)\"", code)
    made_cat = re.findall(r"create_database_catalog\(\s*DatabaseCatalog\(\s*name=\"([^\"]+)\"", code)
    made_synced = re.findall(r"create_synced_database_table\(\s*SyncedDatabaseTable\(\s*name=\"([^\"]+)\"", code)
    for n in made_synced:
        drop_synced(n)
    for n in made_cat:
        drop_catalog(n)
    for n in made_inst:
        drop_instance(n)
    needs_available = any(k in code for k in ("generate_database_credential", "create_database_catalog", "synced", "parent_instance_ref"))
    if "my-instance" in code and "my-instance" not in made_inst:
        ensure_instance("my-instance", needs_available)
    for n in made_synced:
        ensure_catalog(n.split(".")[0])
    for n in set(re.findall(r"name=\"([a-z_]+\.[a-z_]+\.[a-z_]+)\"", code)) - set(made_synced):
        ensure_synced(n)
    for n in set(re.findall(r"name=\"([a-z]+_catalog)\"", code)) - set(made_cat):
        ensure_catalog(n)


def substitute(code):
    return (code.replace("https://<WORKSPACE_URL>/", os.environ["DATABRICKS_HOST"] + "/")
                .replace("<SERVICE_PRINCIPAL_ID>", os.environ["SDK_CLIENT_ID"])
                .replace("<SECRET>", os.environ["SDK_CLIENT_SECRET"]))


# Snippets that fail inside the SDK itself, before or regardless of any server reply, with
# databricks-sdk 0.162 (they would fail the same way against the real service):
# - create_database_instance returns a Wait that binds only `name`, so
#   `instance.read_write_dns` raises KeyError;
# - `parent_instance_ref={...}` passes a dict where DatabaseInstanceRef is required, and
#   serialising the request calls `.as_dict()` on it.
# They are reported as XFAIL with the reason; instances.py covers the same calls correctly.
SDK_SIDE_FAILURES = (
    (KeyError, "'read_write_dns'"),
    (AttributeError, "'dict' object has no attribute 'as_dict'"),
)


def sdk_side(e):
    return any(isinstance(e, t) and str(e) == m for t, m in SDK_SIDE_FAILURES)


def main():
    namespace = {}
    failed = ran = 0
    for section, code in blocks():
        for snippet in snippets(code):
            ran += 1
            title = f"{section} :: {snippet.strip().splitlines()[0][:60]}"
            saved = {}
            if "client_secret=" in snippet:
                # An explicit OAuth client must not meet the PAT of the environment.
                saved = {k: os.environ.pop(k) for k in ("DATABRICKS_TOKEN",) if k in os.environ}
            try:
                prepare(snippet)
                exec(compile(substitute(snippet), title, "exec"), namespace)
                print(f"PASS {title}")
            except Exception as e:  # noqa: BLE001
                if sdk_side(e):
                    print(f"XFAIL {title}: fails inside the SDK ({type(e).__name__}: {e})")
                    continue
                failed += 1
                print(f"FAIL {title}: {type(e).__name__}: {e}")
            finally:
                os.environ.update(saved)
    print(f"{ran} snippets, {failed} failed")
    check_count = ran >= 15
    if not check_count:
        print("FAIL: expected at least 15 snippets from the seed sections")
    sys.exit(1 if failed or not check_count else 0)


main()
