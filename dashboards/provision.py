"""Provision Superset from the bundle in this folder, or export Superset's state back into it.

Runs in Superset's own environment (``.venv-superset/bin/python dashboards/provision.py``), called
by ``cardlake dashboards provision|export`` (``pipelines/lib/superset.py``), which sets
``SUPERSET_CONFIG_PATH``, ``CARDLAKE_SUPERSET_HOME`` and ``CARDLAKE_LAKE``.

``import``: the bundle (``metadata.yaml``, ``databases/``, ``datasets/``, ``charts/``,
``dashboards/``) goes in through Superset's own asset importer, which overwrites by UUID, so a
second run changes nothing; the database URIs' ``${CARDLAKE_LAKE}`` is filled in from the
environment first. Then ``roles.yml`` rebuilds the team roles, their dashboard access and row-level
security, and the users: the admin is created with the password in its file (mode 600 in the state
folder; never passed in the environment) and keeps its password afterwards unless
``--reset-admin-password``; with ``--demo-users`` one login per role is created or reset (user
``ops``, password ``ops-demo``, …), with ``--no-demo-users`` any such login a demo left is
removed.

``export``: Superset's asset exporter, normalised so that a round trip is a clean diff: files
keep the bundle's names (by UUID), each database URI is templated again (a DuckDB file of the lake:
``warehouse.duckdb``, ``ops.duckdb``), chart ids inside the dashboards keep the bundle's numbering,
and fields Superset regenerates (``query_context``, the datasource id in a chart's params, the
export timestamp) are left out.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import string
import sys
from pathlib import Path
from typing import Any

import yaml

BUNDLE = Path(__file__).resolve().parent
ASSET_DIRS = ("databases", "datasets", "charts", "dashboards")
#: a DuckDB file of the lake, as the bundle spells its URI (``warehouse.duckdb``, ``ops.duckdb``)
URI_TEMPLATE = "duckdb:///${CARDLAKE_LAKE}/{name}"
LAKE_FILE = re.compile(r"^duckdb:///.*/(?P<name>[^/?]+\.duckdb)$")
ADMIN = "admin"
#: marks the lines meant for ``cardlake`` (Superset prints its own lines to stdout too)
REPORT = "cardlake: "


# ----------------------------------------------------------------------------------- bundle files
def bundle_files(bundle: Path) -> dict[str, Path]:
    """The bundle's asset files by their path inside the bundle (``charts/x.yaml``)."""
    files = {"metadata.yaml": bundle / "metadata.yaml"}
    for folder in ASSET_DIRS:
        for path in sorted((bundle / folder).rglob("*.yaml")):
            files[path.relative_to(bundle).as_posix()] = path
    return files


def load_contents(bundle: Path, lake: str) -> dict[str, str]:
    """The bundle as Superset's importer wants it, the database URI filled in."""
    contents = {}
    for name, path in bundle_files(bundle).items():
        text = path.read_text(encoding="utf-8")
        if name.startswith("databases/"):
            text = string.Template(text).substitute(CARDLAKE_LAKE=lake)
        contents[name] = text
    return contents


def dump_yaml(data: Any) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=100)


# ------------------------------------------------------------------------------------ app context
def superset_app():
    from superset.app import create_app

    return create_app()


def import_bundle(bundle: Path, lake: str) -> None:
    from superset.commands.importers.v1.assets import ImportAssetsCommand

    ImportAssetsCommand(load_contents(bundle, lake)).run()


def _permission(sm, name: str):
    perm, view = name.split("@", 1)
    pv = sm.find_permission_view_menu(perm, view)
    if pv is None:
        # `superset init` creates every permission the app knows; a name it does not know is a typo
        raise SystemExit(f"roles.yml: Superset has no permission {name!r}")
    return pv


def apply_roles(config: dict[str, Any], admin, demo_users: bool) -> None:
    """Rebuild every role of roles.yml from scratch (idempotent), then the users."""
    from superset import db
    from superset import security_manager as sm
    from superset.connectors.sqla.models import RowLevelSecurityFilter, SqlaTable
    from superset.models.core import Database
    from superset.models.dashboard import Dashboard
    from superset.utils.core import RowLevelSecurityFilterType

    sets = config["permission_sets"]
    dashboards = {d.slug: d for d in db.session.query(Dashboard).all() if d.slug}
    datasets = {t.table_name: t for t in db.session.query(SqlaTable).all()}
    (database,) = db.session.query(Database).filter_by(database_name="cardlake").all()

    dashboard_roles: dict[str, list] = {slug: [] for slug in dashboards}
    for role_name, spec in config["roles"].items():
        role = sm.find_role(role_name) or sm.add_role(role_name)
        perms = []
        for set_name in spec.get("permissions", []):
            perms.extend(_permission(sm, p) for p in sets[set_name])
        wanted = set(spec.get("datasets", []))
        for slug in spec.get("dashboards", []):
            if slug not in dashboards:
                raise SystemExit(f"roles.yml: role {role_name} names an unknown dashboard {slug!r}")
            dashboard_roles[slug].append(role)
            wanted.update(_datasets_of(dashboards[slug], datasets))
        for name in sorted(wanted):
            dataset = datasets[name]
            perms.append(sm.add_permission_view_menu("datasource_access", dataset.get_perm()))
        for schema in spec.get("schemas", []):
            # schema access only: database access would let SQL Lab skip the per-schema check
            perm = sm.get_schema_perm(database.database_name, None, schema)
            perms.append(sm.add_permission_view_menu("schema_access", perm))
        role.permissions = list(dict.fromkeys(perms))

        for table_name, clause in (spec.get("row_level_security") or {}).items():
            name = f"{role_name}: {table_name}"
            rls = db.session.query(RowLevelSecurityFilter).filter_by(name=name).one_or_none()
            if rls is None:
                rls = RowLevelSecurityFilter(name=name)
                db.session.add(rls)
            rls.description = f"roles.yml: what {role_name} sees of {table_name}"
            rls.filter_type = RowLevelSecurityFilterType.REGULAR
            rls.clause = " ".join(clause.split())
            rls.group_key = None
            rls.tables = [datasets[table_name]]
            rls.roles = [role]
    # filters of roles.yml that were removed since
    keep = {
        f"{r}: {t}"
        for r, spec in config["roles"].items()
        for t in (spec.get("row_level_security") or {})
    }
    for rls in db.session.query(RowLevelSecurityFilter).all():
        if rls.name not in keep and re.match(r"^\w+: \w+$", rls.name or ""):
            db.session.delete(rls)

    public = sm.find_role(sm.auth_role_public)
    public.permissions = [_permission(sm, p) for p in config.get("public", [])]

    for slug, dashboard in dashboards.items():
        dashboard.roles = dashboard_roles[slug]
        dashboard.owners = [admin]
        dashboard.published = True
    for username, role_name in config.get("demo_users", {}).items():
        if demo_users:
            _user(sm, username, role_name, f"{username}-demo")
        elif (user := sm.find_user(username=username)) and user.email == _demo_email(username):
            db.session.delete(user)  # a demo's login: not one an operator made under that name
    db.session.commit()


def _demo_email(username: str) -> str:
    """The mark of a login provisioning made (the admin's, a demo user's)."""
    return f"{username}@cardlake.invalid"


def _datasets_of(dashboard, datasets: dict[str, Any]) -> set[str]:
    """The datasets a dashboard reads: its charts' and its native filters' (a filter lists its
    values from its dataset)."""
    names = {chart.datasource.table_name for chart in dashboard.slices}
    by_id = {t.id: name for name, t in datasets.items()}
    metadata = json.loads(dashboard.json_metadata or "{}")
    for native_filter in metadata.get("native_filter_configuration") or []:
        for target in native_filter.get("targets") or []:
            if target.get("datasetId") in by_id:
                names.add(by_id[target["datasetId"]])
    return names


def _user(sm, username: str, role_name: str, password: str, reset: bool = True):
    """The user with this role, created with ``password``; an existing one is re-activated and,
    with ``reset``, gets ``password`` again."""
    from werkzeug.security import generate_password_hash

    role = sm.find_role(role_name)
    user = sm.find_user(username=username)
    if user is None:
        user = sm.add_user(
            username=username,
            first_name=username,
            last_name=role_name,
            email=_demo_email(username),
            role=role,
            password=password,
        )
        if not user:
            raise SystemExit(f"could not create the user {username}")
    else:
        user.roles = [role]
        if reset:
            user.password = generate_password_hash(password)
        user.active = True
    return user


# ------------------------------------------------------------------------------------------ export
def export_bundle(bundle: Path, lake: str) -> list[str]:
    """Write Superset's assets over the bundle, normalised; returns the files written."""
    from superset.commands.export.assets import ExportAssetsCommand

    exported = {name: fn() for name, fn in ExportAssetsCommand().run()}
    old = bundle_files(bundle)
    by_uuid = {}
    chart_numbers: dict[str, int] = {}
    for name, path in old.items():
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if "uuid" in data:
            by_uuid[str(data["uuid"])] = name
        if name.startswith("dashboards/"):
            for node in (data.get("position") or {}).values():
                meta = node.get("meta") if isinstance(node, dict) else None
                if meta and meta.get("uuid") and meta.get("chartId") is not None:
                    chart_numbers[meta["uuid"]] = int(meta["chartId"])

    out: dict[str, Any] = {}
    # databases first, then datasets, charts, dashboards: a new asset's name may follow the
    # file of the asset it belongs to (a dataset's folder is its database's)
    order = {folder: n for n, folder in enumerate(ASSET_DIRS)}
    for name, text in sorted(exported.items(), key=lambda kv: order.get(kv[0].split("/")[0], 9)):
        if name == "metadata.yaml" or "/" not in name:
            continue
        folder = name.split("/", 1)[0]
        data = yaml.safe_load(text)
        target = by_uuid.get(str(data.get("uuid"))) or _fresh_name(folder, data, by_uuid)
        by_uuid.setdefault(str(data.get("uuid")), target)
        out[target] = data

    # chart ids inside dashboards: the bundle's numbers, new charts numbered after them
    db_ids: dict[int, str] = {}
    for data in out.values():
        for node in (data.get("position") or {}).values() if "position" in data else ():
            meta = node.get("meta") if isinstance(node, dict) else None
            if meta and meta.get("uuid") and meta.get("chartId") is not None:
                db_ids[int(meta["chartId"])] = meta["uuid"]
    next_number = max(chart_numbers.values(), default=0) + 1
    for chart_uuid in sorted(set(db_ids.values()) - set(chart_numbers)):
        chart_numbers[chart_uuid] = next_number
        next_number += 1
    renumber = {db_id: chart_numbers[u] for db_id, u in db_ids.items()}

    for name, data in out.items():
        if name.startswith("databases/"):
            data["sqlalchemy_uri"] = _templated_uri(data["sqlalchemy_uri"])
            data.pop("password", None)
        elif name.startswith("charts/"):
            data["query_context"] = None
            params = data.get("params") or {}
            params.pop("slice_id", None)
            params.pop("dashboards", None)
            dataset_file = by_uuid.get(str(data.get("dataset_uuid")), "")
            params["datasource"] = f"__{Path(dataset_file).stem}" if dataset_file else None
        elif name.startswith("dashboards/"):
            _renumber_dashboard(data, renumber)

    written = []
    for name, data in sorted(out.items()):
        path = bundle / name
        path.parent.mkdir(parents=True, exist_ok=True)
        text = dump_yaml(data)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(name)
    for name, path in old.items():
        if name != "metadata.yaml" and name not in out:
            path.unlink()
            written.append(f"{name} (removed)")
    return written


def _templated_uri(uri: str) -> str:
    """A database URI as the bundle keeps it: a DuckDB file of the lake under ``${CARDLAKE_LAKE}``,
    whichever lake the install was provisioned from."""
    match = LAKE_FILE.match(uri)
    if match is None:
        raise SystemExit(f"export: a database URI that is no DuckDB file of the lake: {uri!r}")
    return URI_TEMPLATE.replace("{name}", match["name"])


def _fresh_name(folder: str, data: dict[str, Any], by_uuid: dict[str, str]) -> str:
    if folder == "datasets":
        # beside the other datasets of its database (datasets/<database file>/)
        database = Path(by_uuid.get(str(data.get("database_uuid")), "cardlake")).stem
        return f"datasets/{database}/{_slug(data['table_name'])}.yaml"
    if folder == "dashboards":
        return f"dashboards/{_slug(data.get('slug') or data['dashboard_title'])}.yaml"
    if folder == "databases":
        return f"databases/{_slug(data['database_name'])}.yaml"
    title = data.get("slice_name") or data.get("uuid")
    return f"{folder}/{_slug(title)}_{str(data['uuid'])[:8]}.yaml"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(text).lower()).strip("_") or "untitled"


def _renumber_dashboard(data: dict[str, Any], renumber: dict[int, int]) -> None:
    """Chart ids inside a dashboard in the bundle's numbering. ``chartsInScope`` lists are left
    out: Superset derives them from each filter's scope (whose ``excluded`` ids its importer maps),
    and an imported list would keep ids of the exporting install."""

    def ids(values):
        return sorted(renumber.get(int(v), int(v)) for v in values)

    for node in (data.get("position") or {}).values():
        meta = node.get("meta") if isinstance(node, dict) else None
        if meta and meta.get("chartId") is not None:
            meta["chartId"] = renumber.get(int(meta["chartId"]), meta["chartId"])
    meta = data.get("metadata") or {}
    meta["color_scheme_domain"] = []  # derived from color_scheme
    for f in meta.get("native_filter_configuration") or []:
        f.pop("chartsInScope", None)
        scope = f.get("scope") or {}
        if "excluded" in scope:
            scope["excluded"] = ids(scope["excluded"])
    glob = meta.get("global_chart_configuration") or {}
    glob.pop("chartsInScope", None)
    config = meta.get("chart_configuration") or {}
    renumbered = {}
    for key, value in sorted(config.items(), key=lambda kv: renumber.get(int(kv[0]), int(kv[0]))):
        value = dict(value)
        if "id" in value:
            value["id"] = renumber.get(int(value["id"]), value["id"])
        cross = dict(value.get("crossFilters") or {})
        cross.pop("chartsInScope", None)
        scope = cross.get("scope")
        if isinstance(scope, dict) and "excluded" in scope:
            scope["excluded"] = ids(scope["excluded"])
        if cross:
            value["crossFilters"] = cross
        renumbered[str(renumber.get(int(key), int(key)))] = value
    meta["chart_configuration"] = renumbered
    if "timed_refresh_immune_slices" in meta:
        meta["timed_refresh_immune_slices"] = ids(meta["timed_refresh_immune_slices"])
    if "expanded_slices" in meta:
        meta["expanded_slices"] = {
            str(renumber.get(int(k), int(k))): v for k, v in meta["expanded_slices"].items()
        }


# -------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["import", "export"])
    parser.add_argument("--bundle", type=Path, default=BUNDLE)
    parser.add_argument("--demo-users", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--reset-admin-password", action="store_true")
    args = parser.parse_args(argv)
    lake = os.environ.get("CARDLAKE_LAKE")
    if not lake:
        print("CARDLAKE_LAKE is not set", file=sys.stderr)
        return 2
    lake = str(Path(lake).resolve())
    home = os.environ.get("CARDLAKE_SUPERSET_HOME")
    password_file = Path(home or ".") / "admin_password"
    if not home or not password_file.is_file():
        print(f"no admin password file at {password_file}", file=sys.stderr)
        return 2
    password = password_file.read_text(encoding="ascii").strip()
    app = superset_app()
    with app.app_context(), app.test_request_context():
        from superset import db
        from superset import security_manager as sm
        from superset.utils.core import override_user

        # the importer and exporter act as a user: the admin (created on the first run)
        # the demo's admin always has the file's password (the demo prints it)
        reset = args.reset_admin_password or args.demo_users
        admin = _user(sm, ADMIN, "Admin", password, reset=reset)
        db.session.commit()
        with override_user(admin):
            if args.command == "import":
                import_bundle(args.bundle, lake)
                roles = yaml.safe_load((args.bundle / "roles.yml").read_text(encoding="utf-8"))
                apply_roles(roles, admin, demo_users=args.demo_users)
                print(
                    f"{REPORT}provisioned {len(bundle_files(args.bundle)) - 1} assets, "
                    f"{len(roles['roles'])} roles"
                )
            else:
                written = export_bundle(args.bundle, lake)
                for name in written:
                    print(f"{REPORT}{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
