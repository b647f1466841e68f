"""Clusters, instance pools and vector search through the official SDK: every object created is
read back, with the SDK's own waiters where it has them."""
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound, ResourceAlreadyExists, ResourceDoesNotExist
from databricks.sdk.service import compute, vectorsearch

from _common import check, expect_error, run, wait_until

w = WorkspaceClient()


def pool_and_cluster_lifecycle():
    pool = w.instance_pools.create(instance_pool_name="sdk-pool", node_type_id="i3.xlarge", max_capacity=4)
    got = w.instance_pools.get(pool.instance_pool_id)
    check(got.instance_pool_name == "sdk-pool" and got.enable_elastic_disk, f"pool get: {got}")
    check(got.idle_instance_autotermination_minutes == 60, "the service's default autotermination")
    w.instance_pools.edit(pool.instance_pool_id, "sdk-pool", "i3.xlarge", max_capacity=8)
    check(w.instance_pools.get(pool.instance_pool_id).max_capacity == 8, "pool edit")
    check(any(p.instance_pool_id == pool.instance_pool_id for p in w.instance_pools.list()), "listed")

    c = w.clusters.create_and_wait(
        spark_version="15.4.x-scala2.12", cluster_name="sdk-cluster",
        instance_pool_id=pool.instance_pool_id, num_workers=1)
    check(c.state == compute.State.RUNNING, f"create_and_wait: {c.state}")
    got = w.clusters.get(c.cluster_id)
    check(got.cluster_name == "sdk-cluster" and got.instance_pool_id == pool.instance_pool_id, f"get: {got}")
    resized = w.clusters.resize_and_wait(c.cluster_id, num_workers=2)
    check(resized.num_workers == 2, f"resize: {resized.num_workers}")
    edited = w.clusters.edit_and_wait(c.cluster_id, "15.4.x-scala2.12", cluster_name="sdk-cluster-2",
                                      num_workers=1)
    check(edited.cluster_name == "sdk-cluster-2" and edited.state == compute.State.RUNNING, f"edit: {edited}")
    terminated = w.clusters.delete_and_wait(c.cluster_id)
    check(terminated.state == compute.State.TERMINATED, f"terminate: {terminated.state}")
    started = w.clusters.start_and_wait(c.cluster_id)
    check(started.state == compute.State.RUNNING, f"start: {started.state}")
    w.clusters.permanent_delete(c.cluster_id)
    # 400 INVALID_PARAMETER_VALUE "... does not exist": the SDK maps it to ResourceDoesNotExist.
    expect_error(ResourceDoesNotExist, w.clusters.get, c.cluster_id)
    w.instance_pools.delete(pool.instance_pool_id)
    check(all(p.instance_pool_id != pool.instance_pool_id for p in w.instance_pools.list()),
          "a deleted pool leaves the list")


def vector_search_lifecycle():
    ep = w.vector_search_endpoints.create_endpoint_and_wait("sdk-vs", vectorsearch.EndpointType.STANDARD)
    check(ep.endpoint_status.state == vectorsearch.EndpointStatusState.ONLINE, f"endpoint: {ep}")
    expect_error(ResourceAlreadyExists, w.vector_search_endpoints.create_endpoint, "sdk-vs",
                 vectorsearch.EndpointType.STANDARD)
    got = w.vector_search_endpoints.get_endpoint("sdk-vs")
    check(got.id == ep.id and got.endpoint_type == vectorsearch.EndpointType.STANDARD, f"get: {got}")
    w.vector_search_indexes.create_index(
        name="main.default.sdk_idx", endpoint_name="sdk-vs", primary_key="id",
        index_type=vectorsearch.VectorIndexType.DIRECT_ACCESS,
        direct_access_index_spec=vectorsearch.DirectAccessVectorIndexSpec(
            schema_json='{"id": "integer", "v": "array<float>"}',
            embedding_vector_columns=[vectorsearch.EmbeddingVectorColumn(name="v", embedding_dimension=8)]))
    idx = wait_until(lambda: (lambda i: i if i.status.ready else None)(
        w.vector_search_indexes.get_index("main.default.sdk_idx")), "the index to be ready")
    check(idx.endpoint_name == "sdk-vs" and idx.primary_key == "id", f"index: {idx}")
    check(idx.direct_access_index_spec.schema_json == '{"id":"integer","v":"array<float>"}',
          f"schema_json: {idx.direct_access_index_spec.schema_json}")
    w.vector_search_indexes.delete_index("main.default.sdk_idx")

    def gone():
        try:
            w.vector_search_indexes.get_index("main.default.sdk_idx")
            return False
        except NotFound:
            return True

    wait_until(gone, "the index delete to finish")
    w.vector_search_endpoints.delete_endpoint("sdk-vs")
    expect_error(NotFound, w.vector_search_endpoints.get_endpoint, "sdk-vs")


if __name__ == "__main__":
    run(pool_and_cluster_lifecycle, vector_search_lifecycle)
