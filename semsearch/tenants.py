"""Tenants kept apart by the database: row-level security on a collection and its BM25 statistics.

:meth:`Database.isolate_tenants <semsearch.Database.isolate_tenants>` runs these statements
(no I/O here). A session names its tenant with a setting (``SET app.tenant = 'acme'``); every
table of the collection a reader can select from then shows that tenant's rows only:

- the collection's table: its rows;
- the BM25 postings: its rows' lexemes, term frequencies and lengths;
- the BM25 counters (df, N, total length), which become per tenant: a tenant's text search
  ranks by its own statistics, as if it had a collection of its own. A search that names no
  tenant, by a role the policies do not limit (the owner, a ``BYPASSRLS`` role), ranks by the
  sums over all tenants.

Rows without a tenant are seen by no session under the policy. The statistics' triggers run as
the collection's owner, so they count every tenant's rows whatever the writer's setting.
"""

from __future__ import annotations

import re
from dataclasses import replace

from psycopg import sql

from semsearch import bm25, generated
from semsearch.catalog import update_statement
from semsearch.collection_info import CollectionInfo
from semsearch.errors import ConfigurationError

#: the policy's name on each table (one per table; others the user made are left alone)
POLICY = "semsearch_tenant"
#: a custom setting's name: two identifiers joined by a dot (Postgres' rule for placeholder settings)
_SETTING = re.compile(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")


def check_setting(setting: object) -> str:
    """Return ``setting`` if it can name a session's tenant, else raise.

    >>> check_setting("app.tenant")
    'app.tenant'
    >>> check_setting("tenant")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    semsearch.errors.ConfigurationError: expected a custom setting like 'app.tenant' ..., got 'tenant'
    """
    if not isinstance(setting, str) or not _SETTING.match(setting):
        raise ConfigurationError(
            f"expected a custom setting like 'app.tenant' (lowercase, with one dot), got {setting!r}"
        )
    return setting


def _policy(table: sql.Identifier, condition: sql.Composable) -> list[sql.Composed]:
    return [
        sql.SQL("DROP POLICY IF EXISTS {} ON {}").format(sql.Identifier(POLICY), table),
        sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(table),
        sql.SQL("CREATE POLICY {} ON {} USING ({})").format(sql.Identifier(POLICY), table, condition),
    ]


def isolate_statements(info: CollectionInfo, setting: str | None) -> list[sql.Composed]:
    """Policies, per-tenant statistics and the catalog's record (``setting=None``: all removed).

    Run in one transaction: writers of the collection wait until it commits; searches go on.
    """
    info.layout.check_one_server(
        hint=" (Citus: keep tenants apart with tenant= on every search, or one collection per tenant)"
    )
    if setting is not None:
        check_setting(setting)
    table = info.layout.table
    names = bm25.Names(info.layout.table_name)
    sides = [names.ident(t) for t in (names.postings, names.df, names.stats)]
    reshape = (
        bm25.reshape_statements(info.layout.table_name, tenants=setting is not None)
        if (info.tenant_setting is not None) != (setting is not None)
        else []
    )
    stmts: list[sql.Composed] = []
    if setting is None:
        for t in [table, *sides]:
            stmts.append(sql.SQL("DROP POLICY IF EXISTS {} ON {}").format(sql.Identifier(POLICY), t))
            # row-level security stays on where the user's own policies remain (off, it would show every row;
            # on without a policy, it would show none)
            disable = sql.SQL("ALTER TABLE {} DISABLE ROW LEVEL SECURITY").format(t)
            stmts.append(
                sql.SQL("DO {}").format(
                    sql.Literal(
                        sql.SQL("BEGIN IF NOT EXISTS (SELECT FROM pg_policy WHERE polrelid = {}::regclass) THEN {}; "
                                "END IF; END").format(sql.Literal(t.as_string(None)), disable).as_string(None)
                    )
                )
            )  # fmt: skip
        stmts += reshape  # the policies that read the tenant columns are gone
    else:
        stmts += reshape
        mine = sql.SQL("tenant = current_setting({}, true)").format(sql.Literal(setting))
        stmts += _policy(table, mine)
        stmts += _policy(sides[0], mine)
        # the counters of rows without a tenant are kept under '' and shown to no session
        for side in sides[1:]:
            stmts += _policy(side, sql.SQL("tenant <> '' AND {}").format(mine))
    stmts.append(update_statement(info.name, tenant_setting=setting))
    stmts += generated.functions(replace(info, tenant_setting=setting))
    return stmts
