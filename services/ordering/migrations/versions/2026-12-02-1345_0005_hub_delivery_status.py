"""hub delivery status: when each delivery was last attempted and last failed

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 13:45:00

``GET /hub/{id}/deliveryStatus`` reports a subscription's last attempt and last error; until now a
delivery kept only its attempt count and last error text. Both columns are nullable: rows written
before this revision report no time.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("hub_delivery", sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("hub_delivery", sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("hub_delivery", "last_error_at")
    op.drop_column("hub_delivery", "last_attempt_at")
