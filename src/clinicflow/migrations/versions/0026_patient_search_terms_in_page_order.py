"""patient_search_terms filed by head and full_name: a search reads its page in order (RLS).

0025's key `(tenant_id, term, patient_id)` lists a word's matches by term, so a search had to
read every match and sort it (or walk the names, testing each), which grows with the practice:
at 1M patients "maria" took 1.3 s. Each row now also carries `head` (the term's first
HEAD_LENGTH characters) and the patient's `full_name`, and the primary key is `(tenant_id,
head, full_name, patient_id, term)` (as unique as before: head and full_name follow from term
and patient): under one head the patients come in page order, so a search reads from its
cursor and stops after the page. The table is rebuilt and refilled practice by practice, with
app.tenant_id set to each (the owner role is subject to FORCE RLS), as 0025 did; the setting is
emptied afterwards.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-01 22:40:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from clinicflow.core.rls import disable_tenant_rls, enable_tenant_rls
from clinicflow.patients.search import search_terms

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5_000  # patients read and indexed per round trip
HEAD_LENGTH = 5  # clinicflow.patients.search.HEAD_LENGTH when this was written

_TERM = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
_tenants = sa.table("tenants", sa.column("id", sa.Uuid()))
_patients = sa.table(
    "patients",
    sa.column("tenant_id", sa.Uuid()),
    sa.column("id", sa.Uuid()),
    sa.column("full_name", sa.String()),
    sa.column("email", sa.String()),
    sa.column("phone", sa.String()),
    sa.column("document", sa.String()),
    sa.column("deleted_at", sa.DateTime()),
)


def upgrade() -> None:
    _drop()
    op.create_table(
        "patient_search_terms",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("head", _TERM, nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("term", _TERM, nullable=False),
        *_foreign_keys(),
        sa.PrimaryKeyConstraint(
            "tenant_id",
            "head",
            "full_name",
            "patient_id",
            "term",
            name=op.f("pk_patient_search_terms"),
        ),
    )
    _create_patient_index()
    if op.get_context().dialect.name == "postgresql":
        # As 0025: a prefix is a range inside one histogram bucket of a few million words.
        op.execute("ALTER TABLE patient_search_terms ALTER COLUMN term SET STATISTICS 1000")
    _fill(op.get_bind(), in_page_order=True)


def downgrade() -> None:
    _drop()
    op.create_table(
        "patient_search_terms",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("term", _TERM, nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        *_foreign_keys(),
        sa.PrimaryKeyConstraint(
            "tenant_id", "term", "patient_id", name=op.f("pk_patient_search_terms")
        ),
    )
    _create_patient_index()
    if op.get_context().dialect.name == "postgresql":
        op.execute("ALTER TABLE patient_search_terms ALTER COLUMN term SET STATISTICS 1000")
    _fill(op.get_bind(), in_page_order=False)


def _drop() -> None:
    disable_tenant_rls("patient_search_terms")
    op.drop_index(
        "ix_patient_search_terms_tenant_id_patient_id_term", table_name="patient_search_terms"
    )
    op.drop_table("patient_search_terms")


def _foreign_keys() -> list[sa.ForeignKeyConstraint]:
    return [
        sa.ForeignKeyConstraint(
            ["tenant_id", "patient_id"],
            ["patients.tenant_id", "patients.id"],
            name=op.f("fk_patient_search_terms_tenant_id_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_patient_search_terms_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
    ]


def _create_patient_index() -> None:
    op.create_index(
        "ix_patient_search_terms_tenant_id_patient_id_term",
        "patient_search_terms",
        ["tenant_id", "patient_id", "term"],
        unique=False,
    )
    enable_tenant_rls("patient_search_terms")


def _fill(connection: sa.Connection, *, in_page_order: bool) -> None:
    """Every live patient's terms, practice by practice, in batches in id order."""
    columns: list[sa.ColumnClause[Any]] = [
        sa.column("tenant_id", sa.Uuid()),
        sa.column("term", sa.Text()),
        sa.column("patient_id", sa.Uuid()),
    ]
    if in_page_order:
        columns += [sa.column("head", sa.Text()), sa.column("full_name", sa.String())]
    terms_table = sa.table("patient_search_terms", *columns)
    postgres = connection.dialect.name == "postgresql"
    set_tenant = sa.text("SELECT set_config('app.tenant_id', :tenant_id, true)")
    for tenant_id in list(connection.execute(sa.select(_tenants.c.id)).scalars()):
        if postgres:
            connection.execute(set_tenant, {"tenant_id": str(tenant_id)})
        after = None
        while True:
            query = (
                sa.select(
                    _patients.c.id,
                    _patients.c.full_name,
                    _patients.c.email,
                    _patients.c.phone,
                    _patients.c.document,
                )
                .where(_patients.c.tenant_id == tenant_id, _patients.c.deleted_at.is_(None))
                .order_by(_patients.c.id)
                .limit(BATCH)
            )
            if after is not None:
                query = query.where(_patients.c.id > after)
            rows = connection.execute(query).all()
            if not rows:
                break
            terms = []
            for row in rows:
                for term in sorted(search_terms(row.full_name, row.email, row.phone, row.document)):
                    values = {"tenant_id": tenant_id, "term": term, "patient_id": row.id}
                    if in_page_order:
                        values |= {"head": term[:HEAD_LENGTH], "full_name": row.full_name}
                    terms.append(values)
            if terms:
                connection.execute(terms_table.insert(), terms)
            after = rows[-1].id
    if postgres:
        connection.execute(set_tenant, {"tenant_id": ""})
