"""Admin for orders and the product catalogue.

Orders are read-only here except through the same services the API uses: status and total are
never edited by hand, so the state machine and the server-computed total hold in the admin too.
"""

from __future__ import annotations

from django.contrib import admin, messages

from service_kit.errors import DomainError

from . import services
from .models import Order, OrderItem, Product


class OrderItemInline(admin.TabularInline):
    model = OrderItem
    fields = ["sku", "quantity", "unit_price", "line_total"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        # Adding a line would change what was ordered without changing the total.
        return False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "status", "total", "currency", "created_at"]
    list_filter = ["status", "created_at"]
    search_fields = ["=id", "user__email"]
    list_select_related = ["user"]
    date_hierarchy = "created_at"
    readonly_fields = ["id", "user", "status", "total", "currency", "created_at", "updated_at"]
    inlines = [OrderItemInline]
    actions = ["ship_orders"]

    def has_add_permission(self, request) -> bool:
        # Orders are placed through the API, which computes the total and queues the email.
        return False

    @admin.action(description="Mark selected paid orders as shipped")
    def ship_orders(self, request, queryset) -> None:
        shipped, refused = 0, []
        for order_id in queryset.values_list("id", flat=True):
            try:
                services.order_ship(order_id=order_id)
                shipped += 1
            except DomainError as exc:
                refused.append(f"{order_id}: {exc.detail}")
        if shipped:
            self.message_user(request, f"Shipped {shipped} order(s).", messages.SUCCESS)
        for reason in refused:
            self.message_user(request, reason, messages.WARNING)


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["sku", "name", "unit_price", "created_at"]
    search_fields = ["sku", "name"]
    ordering = ["sku"]
