// Lakebase Autoscaling through the official Databricks JS packages, against the workspace in
// DATABRICKS_HOST / DATABRICKS_TOKEN. The JS SDK (@databricks/sdk-experimental 0.17.0) has no
// typed Postgres service, so the project calls go through its authenticated ApiClient; the
// credential and the connection are @databricks/lakebase's own (generateDatabaseCredential,
// createLakebasePool). Prints one JSON line of what it saw; any failure exits non-zero.
import { WorkspaceClient } from "@databricks/sdk-experimental";
import { createLakebasePool, generateDatabaseCredential } from "@databricks/lakebase";

const w = new WorkspaceClient({});
// Fresh headers per call: the client writes the body's length into the object it is given.
const call = (method, path, query, payload) =>
  w.apiClient.request({
    path: `/api/2.0/postgres/${path}`,
    method,
    query,
    headers: new Headers({ Accept: "application/json", "Content-Type": "application/json" }),
    raw: false,
    payload,
  });

async function wait(op) {
  for (let i = 0; i < 600; i++) {
    // Operation names hold `/`, `+`, `=`: sent raw, as the SDKs do.
    const now = await call("GET", op.name);
    if (now.done) {
      if (now.error) throw new Error(`operation failed: ${JSON.stringify(now.error)}`);
      return now.response;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`operation ${op.name} never finished`);
}

const id = process.argv[2] ?? "js-sdk";
const project = await wait(await call("POST", "projects", { project_id: id }, { spec: { display_name: "JS SDK" } }));
const branches = (await call("GET", `${project.name}/branches`)).branches ?? [];
const production = branches.find((b) => b.status?.default);
const endpoints = (await call("GET", `${production.name}/endpoints`)).endpoints ?? [];
const primary = endpoints.find((e) => e.status?.endpoint_type === "ENDPOINT_TYPE_READ_WRITE");
const credential = await generateDatabaseCredential(w, { endpoint: primary.name });
const me = await w.currentUser.me();
const [host, port] = primary.status.hosts.host.split(":");
const pool = createLakebasePool({
  workspaceClient: w,
  endpoint: primary.name,
  host,
  port: port ? Number(port) : 5432,
  database: "databricks_postgres",
  user: me.userName,
  sslMode: "require",
  ssl: { rejectUnauthorized: false },
  max: 1,
});
const rows = (await pool.query("SELECT current_user AS who, pg_is_in_recovery() AS replica")).rows;
await pool.end();
await wait(await call("DELETE", project.name, { purge: "true" }));
console.log(JSON.stringify({
  project: project.name,
  branches: branches.map((b) => b.name),
  endpoints: endpoints.map((e) => e.name),
  token_expires: credential.expire_time,
  token_length: credential.token.length,
  rows,
}));
