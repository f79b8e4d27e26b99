"""Tamper evidence: each score and read carries its place in one chain and an HMAC (serving/seal.py).

Rows written before this migration keep no digest; their number is kept, so one added later without
a digest is found.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TABLES = ("scores", "score_reads")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("seq", sa.BigInteger, nullable=True))
        op.add_column(table, sa.Column("digest", sa.String(64), nullable=True))
        op.create_index(f"ix_{table}_seq", table, ["seq"], unique=True)
    chain = op.create_table(
        "audit_chain",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("digest", sa.String(64), nullable=True),
        sa.Column("key_fingerprint", sa.String(16), nullable=True),
        sa.Column("unsigned_rows", sa.BigInteger, nullable=False),
    )
    held = sum(op.get_bind().execute(sa.text(f"SELECT count(*) FROM {table}")).scalar() for table in TABLES)
    op.bulk_insert(
        chain, [{"id": 1, "seq": 0, "digest": None, "key_fingerprint": None, "unsigned_rows": held}]
    )


def downgrade() -> None:
    op.drop_table("audit_chain")
    for table in TABLES:
        op.drop_index(f"ix_{table}_seq", table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("digest")
            batch.drop_column("seq")
