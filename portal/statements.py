"""The statements an apply runs for every action, without the ORM's cost per call.

Django compiles a queryset's SQL at every call: some 0.4 ms of CPU for a filter on two
fields, twice the time Postgres takes to answer it, and an apply runs a handful of them
per action (profiled: the larger part of a worker's CPU outside boto3). Here the SQL is
made once per shape from the model's metadata and run with fresh parameters; values
pass through the converters the ORM applies (the backend's, then the field's) and rows
become instances through Model.from_db, so they are the instances the ORM makes.

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
    return instances(model, _select_sql(model, where, tuple(order_by), lock), params)


def instances(model, sql, params, extra=()):
    """Run `sql`, whose columns are the model's concrete fields in order and then one for
    each name of `extra` (set on the instance as it comes, unconverted), as instances."""
    with connection.cursor() as cursor:
        cursor.execute(sql, _prepared(params))
        rows = cursor.fetchall()
    attnames, converters = _row_shape(model)
    width = len(attnames)
    made = []
    for row in _converted(rows, converters):
        obj = model.from_db(connection.alias, attnames, row[:width])
        for name, value in zip(extra, row[width:], strict=True):
            setattr(obj, name, value)
        made.append(obj)
    return made


def values(model, fields, where, params):
    """(value, ...) tuples of `fields` (attribute names) of the rows of `model` WHERE `where`,
    as values_list() answers them."""
    fields = tuple(fields)
    with connection.cursor() as cursor:
        cursor.execute(_values_sql(model, fields, where), _prepared(params))
        rows = cursor.fetchall()
    return [tuple(row) for row in _converted(rows, _converters(model, fields))]


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


def _converted(rows, converters):
    if not converters:
        return rows
    out = []
    for row in rows:
        row = list(row)
        for i, convert, col in converters:
            for f in convert:
                row[i] = f(row[i], col, connection)
        out.append(row)
    return out


@functools.cache
def _row_shape(model):
    fields = model._meta.concrete_fields
    return [f.attname for f in fields], _converters(model, tuple(f.attname for f in fields))


@functools.lru_cache(maxsize=128)
def _converters(model, fields):
    """[(position, converters, column)] as the ORM's compiler finds them for these columns."""
    meta = model._meta
    found = []
    for i, name in enumerate(fields):
        col = meta.get_field(name).get_col(meta.db_table)
        convert = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
        if convert:
            found.append((i, convert, col))
    return found


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
    sql = _values_sql(model, tuple(f.attname for f in model._meta.concrete_fields), where)
    if order_by:
        sql += " ORDER BY " + ", ".join(_columns(model)[name] for name in order_by)
    if lock and connection.features.has_select_for_update:
        sql += " FOR UPDATE"
    return sql


@functools.lru_cache(maxsize=512)
def _values_sql(model, fields, where):
    columns = _columns(model)
    selected = ", ".join(columns[name] for name in fields)
    # Identifiers from the model's metadata; every value a parameter.
    return f"SELECT {selected} FROM {connection.ops.quote_name(model._meta.db_table)} WHERE {where.format(**columns)}"  # noqa: S608, E501


@functools.lru_cache(maxsize=128)
def _update_sql(model, fields, where):
    quote = connection.ops.quote_name
    meta = model._meta
    # UPDATE's SET names bare columns (Postgres refuses a table-qualified one there).
    assignments = ", ".join(f"{quote(meta.get_field(name).column)} = %s" for name in fields)
    return f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {where.format(**_columns(model))}"  # noqa: S608
