"""Every score shown to a key, through the API or the reviewer pages: who read whose record, and when.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "score_reads",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("key_id", sa.String(36), nullable=False, index=True),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("route", sa.String(128), nullable=False),
        sa.Column("score_id", sa.String(36), nullable=False, index=True),
        sa.Column("person_id", sa.String(128), nullable=True, index=True),
    )


def downgrade() -> None:
    op.drop_table("score_reads")
