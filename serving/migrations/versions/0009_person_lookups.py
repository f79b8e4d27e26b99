"""A person looked up whose search showed no score is a row of score_reads without a score: the lookup
alone says the person was looked for.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("score_reads") as batch:
        batch.alter_column("score_id", existing_type=sa.String(36), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM score_reads WHERE score_id IS NULL")
    with op.batch_alter_table("score_reads") as batch:
        batch.alter_column("score_id", existing_type=sa.String(36), nullable=False)
