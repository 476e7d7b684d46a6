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

Incremental by node (macro ``identity_components_changes``, the config and hooks are in the .yml):
a run resolves again only the components, as stored, of the nodes whose records or edges changed.
No edge of the graph leaves such a set of components unless it changed (and then both its ends
are in the set), so resolving the set alone gives every component it holds exactly: merged where
a new edge joins two, split where a withdrawn one leaves two parts, each part anchored at its own
earliest node.
"""

import datetime as dt

import numpy as np
import pyarrow as pa
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


def model(dbt, session):
    # the pre-hook ran on this connection and left its result unread, which DuckDB 2 refuses to
    # leave behind before the next query
    session.complete()
    observed = dbt.ref("int_identifiers_observed").filter("is_linkable")
    links = dbt.ref("int_identity_links").filter("is_used")
    built_at = dt.datetime.now(dt.UTC)
    if dbt.is_incremental:
        # the pre-hook's change set: the nodes to resolve again, and the run's time
        scope = session.sql(f'select * from changes."{dbt.this.identifier}__change_set"')
        built_at = session.sql(f"select max(run_at) from ({scope.sql_query()})").fetchall()[0][0]
        observed = observed.join(scope.project("node"), "node", how="semi")
        links = links.join(scope.project("node as node_a"), "node_a", how="semi")

    nodes = (
        observed.aggregate(
            "node, min(node_kind) as node_kind, min(seen_at) as first_seen_at", "node"
        )
        # the anchor order: earliest first, then by text; position in this order is the node index
        .order("first_seen_at, node")
        .to_arrow_table()
    )
    n = nodes.num_rows
    names = nodes.column("node")

    # every link joins two linkable nodes, so the inner joins keep every used link
    index = session.from_arrow(pa.table({"node": names, "idx": np.arange(n, dtype=np.int64)}))
    ends = (
        links.project("node_a, node_b")
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
    # a relation of this connection, not an Arrow table: dbt-duckdb writes a table through another
    # cursor, whose commit the post-hook (in this connection's transaction) would not see
    table = pa.table(
        {
            "node": names,
            "node_kind": nodes.column("node_kind"),
            "first_seen_at": nodes.column("first_seen_at"),
            "anchor_node": names.take(pa.array(anchor_index)),
            "component_size": pa.array(sizes, pa.int64()),
            "_built_at": pa.array([built_at] * n, pa.timestamp("us", tz="UTC")),
        }
    )
    return session.from_arrow(table)
