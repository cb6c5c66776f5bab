"""Keep consumer cursors per (aggregate, origin): each writing service numbers events apart.

Existing cursors held one sequence per aggregate without saying whose. The inbox says which
origins a consumer applied for the aggregate: the cursor goes to the origin whose event it
last applied, and each other origin gets a cursor at its highest applied sequence. A cursor
with no inbox row behind it (raised by a backfill, or its inbox rows purged) keeps origin ""
and orders nothing: whoever raised it claims it again (`payments_backfill --restart` does, as
"monolith").
Dead letters get the origin of their envelope.
"""

from django.db import migrations, models
from django.db.models import Max
from django.db.models.fields.json import KT


def cursors_split(apps, schema_editor):
    cursors = apps.get_model("outbox", "ConsumerCursor")
    inbox = apps.get_model("outbox", "InboxEvent")
    for cursor in cursors.objects.filter(origin="").iterator():
        applied = inbox.objects.filter(
            consumer=cursor.consumer,
            aggregate_type=cursor.aggregate_type,
            aggregate_id=cursor.aggregate_id,
        )
        tops = dict(applied.values_list("origin").annotate(top=Max("sequence")))
        if not tops:
            continue
        last = (
            applied.filter(sequence=cursor.last_sequence)
            .order_by("-processed_at")
            .values_list("origin", flat=True)
            .first()
        )
        owner = last if last is not None else max(tops, key=tops.get)
        cursor.origin = owner
        cursor.save(update_fields=["origin"])
        for origin, top in tops.items():
            if origin != owner:
                cursors.objects.create(
                    consumer=cursor.consumer,
                    aggregate_type=cursor.aggregate_type,
                    aggregate_id=cursor.aggregate_id,
                    origin=origin,
                    last_sequence=top,
                )


def cursors_merge(apps, schema_editor):
    cursors = apps.get_model("outbox", "ConsumerCursor")
    keys = cursors.objects.values_list("consumer", "aggregate_type", "aggregate_id").distinct()
    for consumer, aggregate_type, aggregate_id in keys.iterator():
        group = cursors.objects.filter(
            consumer=consumer, aggregate_type=aggregate_type, aggregate_id=aggregate_id
        ).order_by("-last_sequence", "id")
        keep = group.first()
        group.exclude(id=keep.id).delete()
        cursors.objects.filter(id=keep.id).update(origin="")


def dead_letters_fill(apps, schema_editor):
    letters = apps.get_model("outbox", "DeadLetter")
    letters.objects.filter(origin="").update(origin=KT("envelope__origin"))


class Migration(migrations.Migration):
    dependencies = [("outbox", "0003_outbox_autovacuum")]

    operations = [
        migrations.RemoveConstraint(model_name="consumercursor", name="outbox_cursor_unique"),
        migrations.AddField(
            model_name="consumercursor",
            name="origin",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddField(
            model_name="deadletter",
            name="origin",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddConstraint(
            model_name="consumercursor",
            constraint=models.UniqueConstraint(
                fields=("consumer", "aggregate_type", "aggregate_id", "origin"),
                name="outbox_cursor_origin_unique",
            ),
        ),
        migrations.RunPython(cursors_split, cursors_merge),
        migrations.RunPython(dead_letters_fill, migrations.RunPython.noop),
    ]
