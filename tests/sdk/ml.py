"""The ML kinds through the official SDK: the objects a lakebundle deploy of the e2e_ml
fixture made (an experiment, a legacy registry model, a Unity Catalog model and a serving
endpoint) read back with their permissions and grants, then the SDK's own serving endpoint
round trip with its config-update waiter."""
import datetime

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound, ResourceConflict
from databricks.sdk.service import ml, serving

from _common import check, expect_error, run

w = WorkspaceClient()


def direct_groups(acl):
    return sorted(
        (e.group_name, e.all_permissions[0].permission_level.value)
        for e in (acl.access_control_list or [])
        if e.group_name and not e.all_permissions[0].inherited
    )


def deployed_objects_read_back():
    me = w.current_user.me().user_name
    exp = w.experiments.get_by_name(f"/Users/{me}/churn-exp").experiment
    check(exp.lifecycle_stage == "active", f"experiment {exp}")
    check(any(t.key == "stage" and t.value == "dev" for t in exp.tags), f"tags {exp.tags}")
    check(direct_groups(w.experiments.get_permissions(exp.experiment_id)) == [("ml-team", "CAN_EDIT")],
          "experiment permissions")
    listed = [e.experiment_id for e in w.experiments.list_experiments()]
    check(exp.experiment_id in listed, f"experiment listed: {listed}")

    model = w.model_registry.get_model("legacy-fraud").registered_model_databricks
    check(model.description == "fraud model", f"model {model}")
    check(model.id and model.id != "legacy-fraud", "the model has its own id")
    check(direct_groups(w.model_registry.get_permissions(model.id)) == [("ml-team", "CAN_READ")],
          "model permissions")

    uc = w.registered_models.get("ml_main.models.churn")
    check(uc.comment == "churn model" and uc.catalog_name == "ml_main", f"registered model {uc}")
    grants = w.grants.get(securable_type="function", full_name="ml_main.models.churn")
    check([(a.principal, sorted(p.value for p in a.privileges)) for a in grants.privilege_assignments]
          == [("ml-team", ["EXECUTE"])], f"grants {grants}")

    ep = w.serving_endpoints.get("churn-endpoint")
    check(ep.state.config_update == serving.EndpointStateConfigUpdate.NOT_UPDATING, f"{ep.state}")
    check(ep.state.ready == serving.EndpointStateReady.READY, f"{ep.state}")
    check(ep.config.served_entities[0].entity_name == "ml_main.models.churn", f"{ep.config}")
    check([(t.key, t.value) for t in ep.tags] == [("team", "ml")], f"tags {ep.tags}")
    check(direct_groups(w.serving_endpoints.get_permissions(ep.id)) == [("ml-team", "CAN_QUERY")],
          "endpoint permissions")


def sdk_endpoint_round_trip():
    entity = serving.ServedEntityInput(entity_name="ml_main.models.churn", entity_version="2",
                                       workload_size="Small", scale_to_zero_enabled=True)
    ep = w.serving_endpoints.create_and_wait(
        name="sdk-endpoint",
        config=serving.EndpointCoreConfigInput(name="sdk-endpoint", served_entities=[entity]),
        timeout=datetime.timedelta(seconds=30))
    check(ep.config.served_entities[0].name == "churn-2", f"{ep.config}")
    expect_error(ResourceConflict, w.serving_endpoints.create, name="sdk-endpoint",
                 config=serving.EndpointCoreConfigInput(name="sdk-endpoint", served_entities=[entity]))
    w.serving_endpoints.patch("sdk-endpoint", add_tags=[serving.EndpointTag(key="k", value="v")])
    check([(t.key, t.value) for t in w.serving_endpoints.get("sdk-endpoint").tags] == [("k", "v")],
          "tag added")
    w.serving_endpoints.delete("sdk-endpoint")
    expect_error(NotFound, w.serving_endpoints.get, "sdk-endpoint")


def sdk_experiment_round_trip():
    me = w.current_user.me().user_name
    created = w.experiments.create_experiment(name=f"/Users/{me}/sdk-exp",
                                              tags=[ml.ExperimentTag(key="a", value="1")])
    w.experiments.update_experiment(created.experiment_id, new_name=f"/Users/{me}/sdk-exp-2")
    got = w.experiments.get_experiment(created.experiment_id).experiment
    check(got.name == f"/Users/{me}/sdk-exp-2", f"{got.name}")
    w.experiments.delete_experiment(created.experiment_id)
    got = w.experiments.get_experiment(created.experiment_id).experiment
    check(got.lifecycle_stage == "deleted", "soft-deleted")
    w.experiments.restore_experiment(created.experiment_id)
    w.experiments.delete_experiment(created.experiment_id)


run(deployed_objects_read_back, sdk_endpoint_round_trip, sdk_experiment_round_trip)
