"""The statements an apply runs for every action, without the ORM's cost per call.

Django compiles a queryset's SQL at every call: some 0.4 ms of CPU for a filter on two
fields, twice the time Postgres takes to answer it, and an apply runs a handful of them
per action (profiled: the larger part of a worker's CPU outside boto3). Here the SQL is
made once per shape from the model's metadata and run with fresh parameters; rows come
back as model instances through Django's own raw() (its converters, from_db), so they
are the instances the ORM would make.

`where` is SQL over the model's columns, each written as {attribute name} (quoted from
the metadata here), with every value a %s parameter; `placeholders(n)` writes an IN list.
"""

import functools
import uuid

from django.db import connection


def placeholders(n):
    """'(%s, %s, ...)' for an IN list of n values (n > 0)."""
    if n < 1:
        raise ValueError("an IN list needs at least one value")
    return "(" + ", ".join(["%s"] * n) + ")"


def select(model, where, params, *, order_by=(), lock=False):
    """The rows of `model` WHERE `where`, as model instances; `order_by`: attribute names;
    `lock`: SELECT ... FOR UPDATE where the database has it (Postgres)."""
    return list(model.objects.raw(_select_sql(model, where, tuple(order_by), lock), _prepared(params)))


def values(model, fields, where, params):
    """(value, ...) tuples of `fields` (attribute names) of the rows of `model` WHERE `where`,
    as values_list() answers them."""
    sql, converters = _values_sql(model, tuple(fields), where)
    with connection.cursor() as cursor:
        cursor.execute(sql, _prepared(params))
        rows = cursor.fetchall()
    if not converters:
        return rows
    rows = [list(row) for row in rows]
    for row in rows:
        for i, convert in converters:
            for f in convert:
                row[i] = f(row[i], None, connection)
    return [tuple(row) for row in rows]


def update(model, where, params, **values):
    """UPDATE `model` SET `values` WHERE `where`; returns the number of rows it changed.
    Like QuerySet.update(): no save(), no signals, auto_now left alone."""
    fields = tuple(values)
    meta = model._meta
    prepared = [meta.get_field(name).get_db_prep_save(values[name], connection) for name in fields]
    with connection.cursor() as cursor:
        cursor.execute(_update_sql(model, fields, where), [*prepared, *_prepared(params)])
        return cursor.rowcount


def _prepared(params):
    """The WHERE values as the database takes them: a UUID as the text SQLite stores."""
    if connection.features.has_native_uuid_field:
        return params
    return [p.hex if isinstance(p, uuid.UUID) else p for p in params]


@functools.cache
def _columns(model):
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    columns = {}
    for field in model._meta.concrete_fields:
        columns[field.attname] = columns[field.name] = f"{table}.{quote(field.column)}"
    return columns


@functools.lru_cache(maxsize=512)
def _select_sql(model, where, order_by, lock):
    columns = _columns(model)
    selected = ", ".join(columns[f.attname] for f in model._meta.concrete_fields)
    # Identifiers from the model's metadata; every value a parameter.
    sql = f"SELECT {selected} FROM {connection.ops.quote_name(model._meta.db_table)} WHERE {where.format(**columns)}"  # noqa: S608, E501
    if order_by:
        sql += " ORDER BY " + ", ".join(columns[name] for name in order_by)
    if lock and connection.features.has_select_for_update:
        sql += " FOR UPDATE"
    return sql


@functools.lru_cache(maxsize=128)
def _values_sql(model, fields, where):
    columns = _columns(model)
    meta = model._meta
    converters = []
    for i, name in enumerate(fields):
        field = meta.get_field(name)
        found = field.get_db_converters(connection) + connection.ops.get_db_converters(
            field.get_col(meta.db_table)
        )
        if found:
            converters.append((i, found))
    selected = ", ".join(columns[name] for name in fields)
    sql = f"SELECT {selected} FROM {connection.ops.quote_name(meta.db_table)} WHERE {where.format(**columns)}"  # noqa: S608
    return sql, converters


@functools.lru_cache(maxsize=128)
def _update_sql(model, fields, where):
    quote = connection.ops.quote_name
    meta = model._meta
    # UPDATE's SET names bare columns (Postgres refuses a table-qualified one there).
    assignments = ", ".join(f"{quote(meta.get_field(name).column)} = %s" for name in fields)
    return f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {where.format(**_columns(model))}"  # noqa: S608
