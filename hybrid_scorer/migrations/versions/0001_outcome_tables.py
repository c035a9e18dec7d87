"""The predictions and feedback tables. `if_not_exists`: a SQLite store written before the migrations
(the same tables, no alembic_version) is adopted as it is.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "predictions",
        sa.Column("prediction_id", sa.Text, primary_key=True),
        sa.Column("predicted_at", sa.Text, nullable=False),
        sa.Column("model_version", sa.Text, nullable=False),
        sa.Column("log_prediction", sa.Float, nullable=False),
        sa.Column("low_80", sa.Float),
        sa.Column("high_80", sa.Float),
        sa.Column("low_90", sa.Float),
        sa.Column("high_90", sa.Float),
        sa.Column("fallback", sa.Integer, nullable=False),
        if_not_exists=True,
    )
    op.create_table(
        "feedback",
        sa.Column("prediction_id", sa.Text, primary_key=True),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("observed_at", sa.Text, nullable=False),
        sa.Column("received_at", sa.Text, nullable=False),
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_table("feedback")
    op.drop_table("predictions")
