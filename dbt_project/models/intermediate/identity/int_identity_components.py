"""The identity graph's connected components: every linkable node → the node that names its
component (``anchor_node``).

Nodes are the linkable identifiers of ``int_identifiers_observed``; edges are the used links of
``int_identity_links``. Components are found with ``scipy.sparse.csgraph.connected_components``
(union of all links, transitively). The anchor is the component's earliest-seen node: smallest
first-seen time, ties broken by the node text. It changes only when data adds an earlier-seen
node to the component (or merges two components: the earlier one's anchor wins), so the
``user_key`` derived from it (``int_users_resolved``) is stable across reruns and daily loads.

Performance: the nodes are numbered once in DuckDB and the links' two ends are turned into those
numbers by a join in DuckDB (a hash join on the node text), so Python only sees integer arrays.
"""

import numpy as np
import pyarrow as pa
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


def model(dbt, session):
    dbt.config(materialized="table")
    observed = dbt.ref("int_identifiers_observed")
    links = dbt.ref("int_identity_links")

    nodes = (
        observed.filter("is_linkable")
        .aggregate("node, min(node_kind) as node_kind, min(seen_at) as first_seen_at", "node")
        # the anchor order: earliest first, then by text; position in this order is the node index
        .order("first_seen_at, node")
        .to_arrow_table()
    )
    n = nodes.num_rows
    names = nodes.column("node")

    # every link joins two linkable nodes, so the inner joins keep every used link
    index = session.from_arrow(pa.table({"node": names, "idx": np.arange(n, dtype=np.int64)}))
    ends = (
        links.filter("is_used")
        .project("node_a, node_b")
        .join(index.project("node as node_a, idx as a"), "node_a")
        .join(index.project("node as node_b, idx as b"), "node_b")
        .project("a, b")
        .fetchnumpy()
    )
    a, b = ends["a"], ends["b"]
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)

    # nodes are sorted by (first_seen_at, node): a component's first index is its anchor
    first_index = np.full(labels.max() + 1 if n else 0, n, dtype=np.int64)
    np.minimum.at(first_index, labels, np.arange(n, dtype=np.int64))
    anchor_index = first_index[labels]
    sizes = np.bincount(labels)[labels] if n else np.array([], dtype=np.int64)
    return pa.table(
        {
            "node": names,
            "node_kind": nodes.column("node_kind"),
            "first_seen_at": nodes.column("first_seen_at"),
            "anchor_node": names.take(pa.array(anchor_index)),
            "component_size": pa.array(sizes, pa.int64()),
        }
    )
