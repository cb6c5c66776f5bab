"""Wake relays at commit: a statement trigger NOTIFYs `outbox_events` (PostgreSQL only).

PostgreSQL delivers a NOTIFY when the transaction commits and folds identical ones, so a
transaction writing a thousand events wakes each listening relay once, and a rolled-back one
wakes nobody.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('outbox_events', '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS outbox_outboxevent_notify ON outbox_outboxevent;
CREATE TRIGGER outbox_outboxevent_notify AFTER INSERT ON outbox_outboxevent
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
"""
DROP = """
DROP TRIGGER IF EXISTS outbox_outboxevent_notify ON outbox_outboxevent;
DROP FUNCTION IF EXISTS outbox_notify();
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("outbox", "0001_initial")]
    operations = [migrations.RunPython(create, drop)]
