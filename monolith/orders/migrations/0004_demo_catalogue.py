"""A small demo catalogue, so a new database can take an order at once.

Prices come only from the catalogue (`Product`); without one, no order could be placed until
someone imported products. Existing rows with the same sku are left as they are; rolling back
removes only the demo products that no order line names.
"""

from decimal import Decimal

from django.db import migrations

DEMO_CATALOGUE = [
    ("BOOK-MONO2MICRO", "Monolith to Microservices (paperback)", "39.90"),
    ("BOOK-REFACTOR", "Refactoring, 2nd edition (hardcover)", "47.50"),
    ("MUG-FIG", "Strangler fig mug, 350 ml", "12.50"),
    ("NOTEBOOK-A5", "Dotted notebook A5", "8.90"),
    ("PEN-GEL-BLUE", "Gel pen, blue", "1.20"),
    ("STICKERS-10", "Sticker pack (10)", "3.50"),
    ("TEE-FIG-M", "Strangler fig T-shirt, size M", "24.00"),
    ("HOODIE-GREY-L", "Grey hoodie, size L", "49.00"),
]


def add_demo_catalogue(apps, schema_editor):
    product = apps.get_model("orders", "Product")
    product.objects.using(schema_editor.connection.alias).bulk_create(
        [
            product(sku=sku, name=name, unit_price=Decimal(price))
            for sku, name, price in DEMO_CATALOGUE
        ],
        ignore_conflicts=True,
    )


def remove_demo_catalogue(apps, schema_editor):
    db = schema_editor.connection.alias
    product = apps.get_model("orders", "Product")
    ordered = apps.get_model("orders", "OrderItem").objects.using(db).values("sku")
    demo = [sku for sku, _, _ in DEMO_CATALOGUE]
    product.objects.using(db).filter(sku__in=demo).exclude(sku__in=ordered).delete()


class Migration(migrations.Migration):
    dependencies = [("orders", "0003_product_sku_rule_and_price_check")]

    operations = [migrations.RunPython(add_demo_catalogue, remove_demo_catalogue)]
