"""The table registry (``warehouse/tables.yml``): each warehouse relation's owner, keys, personal
data, audience and whether the analysts' copy holds it.

Everything that decides by table reads it: the store's writers (a writer writes only its owner's
tables), the PostgreSQL grants, the analysts' published copy, erasure and the privacy scan.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

REGISTRY_FILE = Path(__file__).with_name("tables.yml")
OWNERS = ("dbt", "models", "programs", "privacy")
AUDIENCES = ("marketers", "analysts", "restricted")
KINDS = ("table", "view")
# The PostgreSQL group roles of each audience (dbt_project.yml's ``access_roles`` var holds the
# same names for dbt's grants; a test keeps the two in step).
ACCESS_ROLES = {"analysts": "cx_analyst", "marketers": "cx_marketer", "pipeline": "cx_pipeline"}
_FIELDS = {
    "owner",
    "schema",
    "kind",
    "keys",
    "member",
    "records",
    "personal",
    "audience",
    "published",
    "bookkeeping",
}


class RegistryError(ValueError):
    """The registry file is malformed, or names a table it does not hold."""


@dataclass(frozen=True)
class Table:
    """One relation of the warehouse, as the registry describes it."""

    name: str
    owner: str
    audience: str
    schema: str = "main"
    kind: str = "table"
    keys: tuple[str, ...] = ()
    member: str | None = None
    records: tuple[str, ...] = ()
    personal: tuple[str, ...] = ()
    published: bool = True
    bookkeeping: tuple[str, ...] = ()

    @property
    def readers(self) -> tuple[str, ...]:
        """Who may read it: marketers' tables are analysts' too."""
        return {"marketers": ("analysts", "marketers"), "analysts": ("analysts",)}.get(
            self.audience, ()
        )


def _table(name: str, entry: dict, defaults: dict) -> Table:
    where = f"{REGISTRY_FILE}: table {name!r}"
    unknown = set(entry) - _FIELDS
    if unknown:
        raise RegistryError(
            f"{where}: unknown field(s) {sorted(unknown)}; known: {sorted(_FIELDS)}"
        )
    values = {**defaults, **entry}
    for field, allowed in (("owner", OWNERS), ("audience", AUDIENCES), ("kind", KINDS)):
        if values.get(field) not in allowed:
            raise RegistryError(f"{where}: {field} is {values.get(field)!r}, not one of {allowed}")
    published = values.get("published", values["audience"] != "restricted")
    if published and values["audience"] == "restricted":
        raise RegistryError(f"{where}: a restricted table cannot be published")
    return Table(
        name=name,
        owner=values["owner"],
        audience=values["audience"],
        schema=values["schema"],
        kind=values["kind"],
        keys=tuple(values["keys"]),
        member=values.get("member"),
        records=tuple(values["records"]),
        personal=tuple(values["personal"]),
        published=bool(published),
        bookkeeping=tuple(values["bookkeeping"]),
    )


@cache
def registry() -> dict[str, Table]:
    """Every registered relation by name (names are unique across schemas)."""
    document = yaml.safe_load(REGISTRY_FILE.read_text())
    defaults = document.get("defaults", {})
    return {name: _table(name, entry or {}, defaults) for name, entry in document["tables"].items()}


def table(name: str) -> Table:
    """The registry's entry for ``name``; a clear error when it has none."""
    try:
        return registry()[name]
    except KeyError:
        raise RegistryError(
            f"table {name!r} is not in the table registry {REGISTRY_FILE}: add it there with "
            "its owner, keys, personal columns and audience"
        ) from None


def owned_by(owner: str) -> tuple[Table, ...]:
    return tuple(t for t in registry().values() if t.owner == owner)


def published() -> tuple[Table, ...]:
    """The relations the analysts' DuckDB copy holds."""
    return tuple(t for t in registry().values() if t.published)


def readable_by(role: str) -> tuple[str, ...]:
    """Names of the tables ``role`` (analysts or marketers) may read."""
    return tuple(t.name for t in registry().values() if role in t.readers)


def grant_vars() -> dict[str, list[str]]:
    """The dbt vars the PostgreSQL grants macro (``macros/access.sql``) reads: the analysts' and
    the marketers' tables in the marts' schema."""
    marts = [t for t in registry().values() if t.schema == "main" and t.kind == "table"]
    return {
        "analyst_tables": [t.name for t in marts if "analysts" in t.readers],
        "marketer_tables": [t.name for t in marts if "marketers" in t.readers],
    }
