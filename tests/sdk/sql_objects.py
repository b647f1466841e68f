"""Dashboards, Genie spaces, SQL alerts v2 and quality monitors through the official SDK: the
objects a lakebundle deploy made (ids in argv[1], JSON) read back, then the SDK's own
create / update / trash round trips."""
import json
import sys

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound
from databricks.sdk.service import catalog, dashboards, sql

from _common import check, expect_error, run

w = WorkspaceClient()
IDS = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}


def levels(object_type, object_id):
    acl = w.permissions.get(object_type, object_id).access_control_list or []
    return {
        (a.group_name or a.user_name): a.all_permissions[0].permission_level.value
        for a in acl
        if a.all_permissions and not a.all_permissions[0].inherited
    }


def deployed_objects_read_back():
    check(IDS, "ids passed in")
    d = w.lakeview.get(IDS["dashboard"])
    check(d.display_name == "Sales overview", f"dashboard: {d.display_name}")
    check(d.lifecycle_state == dashboards.LifecycleState.ACTIVE, f"{d.lifecycle_state}")
    check(json.loads(d.serialized_dashboard)["pages"][0]["name"] == "overview", "definition")
    p = w.lakeview.get_published(IDS["dashboard"])
    check(p.embed_credentials is False and p.warehouse_id == IDS["warehouse"], f"published: {p}")
    check(levels("dashboards", IDS["dashboard"]).get("users") == "CAN_READ", "dashboard ACL")
    listed = [x.dashboard_id for x in w.lakeview.list()]
    check(IDS["dashboard"] in listed, f"listed: {listed}")

    s = w.genie.get_space(IDS["space"], include_serialized_space=True)
    check(s.title == "Taxi questions" and s.warehouse_id == IDS["warehouse"], f"space: {s}")
    check(json.loads(s.serialized_space)["version"] == 1, "space definition")
    check(levels("genie", IDS["space"]).get("users") == "CAN_RUN", "space ACL")

    a = w.alerts_v2.get_alert(IDS["alert"])
    check(a.display_name == "Daily revenue", f"alert: {a.display_name}")
    check(a.evaluation.comparison_operator == sql.ComparisonOperator.GREATER_THAN, "operator")
    check(a.evaluation.threshold.value.double_value == 1000, "threshold")
    check(a.schedule.quartz_cron_schedule == "0 0 8 * * ?", "schedule")
    check(a.lifecycle_state == sql.AlertLifecycleState.ACTIVE, f"{a.lifecycle_state}")
    check(levels("alertsv2", IDS["alert"]).get("users") == "CAN_RUN", "alert ACL")
    f = w.alerts_v2.get_alert(IDS["file_alert"])
    check(f.query_text == "SELECT sum(amount) AS amount\nFROM lake.raw.orders", f"{f.query_text!r}")
    listed = {x.id for x in w.alerts_v2.list_alerts()}
    check({IDS["alert"], IDS["file_alert"]} <= listed, f"alerts listed: {listed}")

    m = w.quality_monitors.get(IDS["monitor"])
    check(m.output_schema_name == "lake.metrics", f"monitor: {m.output_schema_name}")
    check(m.snapshot is not None and m.schedule.timezone_id == "UTC", f"monitor: {m}")
    check(m.status in (catalog.MonitorInfoStatus.MONITOR_STATUS_PENDING,
                       catalog.MonitorInfoStatus.MONITOR_STATUS_ACTIVE), f"{m.status}")


def sdk_round_trips():
    d = w.lakeview.create(dashboards.Dashboard(display_name="sdk-dash", serialized_dashboard="{}",
                                               warehouse_id=IDS["warehouse"]))
    d2 = w.lakeview.update(d.dashboard_id, dashboards.Dashboard(display_name="sdk-dash-2"))
    check(d2.display_name == "sdk-dash-2" and d2.etag != d.etag, "update moves the etag")
    w.lakeview.publish(d.dashboard_id, embed_credentials=True)
    check(w.lakeview.get_published(d.dashboard_id).embed_credentials, "published")
    w.lakeview.trash(d.dashboard_id)
    check(w.lakeview.get(d.dashboard_id).lifecycle_state == dashboards.LifecycleState.TRASHED, "trashed")

    s = w.genie.create_space(IDS["warehouse"], '{"version": 1}', title="sdk-space")
    w.genie.update_space(s.space_id, description="about")
    check(w.genie.get_space(s.space_id).description == "about", "space update")
    w.genie.trash_space(s.space_id)
    expect_error(NotFound, w.genie.get_space, s.space_id)

    alert = sql.AlertV2(
        display_name="sdk-alert", query_text="SELECT 1 AS v", warehouse_id=IDS["warehouse"],
        evaluation=sql.AlertV2Evaluation(
            comparison_operator=sql.ComparisonOperator.EQUAL,
            source=sql.AlertV2OperandColumn(name="v"),
            threshold=sql.AlertV2Operand(value=sql.AlertV2OperandValue(double_value=1))),
        schedule=sql.CronSchedule(quartz_cron_schedule="0 0 * * * ?", timezone_id="UTC"))
    a = w.alerts_v2.create_alert(alert)
    alert.display_name = "sdk-alert-2"
    w.alerts_v2.update_alert(a.id, alert, update_mask="display_name")
    check(w.alerts_v2.get_alert(a.id).display_name == "sdk-alert-2", "alert update")
    w.alerts_v2.trash_alert(a.id)
    check(w.alerts_v2.get_alert(a.id).lifecycle_state == sql.AlertLifecycleState.DELETED, "trashed")
    w.alerts_v2.trash_alert(a.id, purge=True)
    expect_error(NotFound, w.alerts_v2.get_alert, a.id)


run(deployed_objects_read_back, sdk_round_trips)
