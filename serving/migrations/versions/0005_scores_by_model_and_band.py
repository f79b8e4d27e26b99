"""An index on the scores' model and band, so listing the bands a model's scores hold (the reviewers'
band filter) reads the index, not every stored score.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_scores_model_band", "scores", ["model_name", "risk_band"])


def downgrade() -> None:
    op.drop_index("ix_scores_model_band", table_name="scores")
